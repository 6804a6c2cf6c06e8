import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InterfaceError } from "./errors.js";
import { commandLines, type FakeRunner } from "../exec/runner_fake.js";
import { FAKE_IFNAME as NAME, fakeHost, type HostState } from "./host_fake.js";
import { deleteInterface, ensureInterface, type InterfaceAction } from "./interface.js";
import { PrivateKey, writePrivateKeyFile } from "./keys.js";

const READS = [/^ip -details -json addr show /, /^ip -json -[46] route show /, /^wg show \S+ dump$/];
const mutations = (r: FakeRunner): string[] => commandLines(r.calls).filter((a) => !READS.some((re) => re.test(a)));
const kinds = (actions: readonly InterfaceAction[]): string[] => actions.map((x) => x.kind);

describe("wireguard - ensureInterface against a fake host", () => {
  let dir = "";
  let keyPath = "";
  let key: PrivateKey;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-wg-iface-"));
    keyPath = join(dir, "private.key");
    key = PrivateKey.generate();
    await writePrivateKeyFile(keyPath, key);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const desired = () => ({
    name: NAME,
    implementation: "kernel" as const,
    mtu: 1380,
    listenPort: 51820,
    privateKeyPath: keyPath,
    addresses: ["100.64.0.5/32"],
    routes: ["100.64.0.0/10", "10.20.0.0/16"],
  });

  it("creates a missing interface, then a second run changes nothing", async () => {
    const state: HostState = { exists: false, kind: "", mtu: 0, up: false, addresses: [], routes: [], privateKey: undefined, listenPort: 0 };
    const creating = fakeHost(state);
    const first = await ensureInterface({ ...desired(), runner: creating });
    // A device just created is not read (no key, peers or routes yet), and its link changes are one `ip -batch`.
    expect(creating.calls.map((c) => c.argv.join(" ")), "commands to create and set up").toEqual([
      `ip -details -json addr show dev ${NAME}`,
      `ip link add dev ${NAME} type wireguard`,
      `ip -details -json addr show dev ${NAME}`,
      `wg set ${NAME} private-key ${keyPath} listen-port 51820`,
      "ip -batch -",
    ]);
    const wantKinds = ["create", "set-private-key", "set-listen-port", "set-mtu", "add-address", "set-up", "replace-route", "replace-route"];
    expect(kinds(first.actions), `got ${kinds(first.actions).join(",")}, want ${wantKinds.join(",")}`).toEqual(wantKinds);
    expect(first.publicKey, "result carries the public key").toBe(key.publicKey());

    const runner = fakeHost(state);
    const second = await ensureInterface({ ...desired(), runner });
    expect(second.changed, `got changed=${second.changed} actions=${JSON.stringify(second.actions)}, want no change`).toBe(false);
    expect(mutations(runner), "second run must only read").toEqual([]);
  });

  it("converges drift without recreating or downing the link, and keeps foreign routes", async () => {
    const state: HostState = {
      exists: true,
      kind: "tun",
      mtu: 1420,
      up: false,
      addresses: ["100.64.0.5/32", "100.64.0.99/32"],
      routes: [
        { dst: "100.64.0.0/10", protocol: "87" },
        { dst: "10.99.0.0/16", protocol: "87" }, // ours, no longer desired: pruned
        { dst: "192.168.7.0/24", protocol: "boot" }, // someone else's: kept
      ],
      privateKey: key.toBase64(),
      listenPort: 51820,
    };
    const runner = fakeHost(state);
    const got = await ensureInterface({ ...desired(), runner });
    const want = [
      "ip link set dev weft0 mtu 1380",
      "ip address del 100.64.0.99/32 dev weft0",
      "ip link set dev weft0 up",
      "ip route replace 10.20.0.0/16 dev weft0 proto 87",
      "ip route del 10.99.0.0/16 dev weft0 proto 87",
    ];
    expect(mutations(runner), `got ${JSON.stringify(mutations(runner))}, want ${JSON.stringify(want)}`).toEqual(want);
    expect(got.created, "must not recreate").toBe(false);
    expect(state.routes.map((r) => r.dst).sort(), "foreign route kept").toEqual(["10.20.0.0/16", "100.64.0.0/10", "192.168.7.0/24"]);
  });

  it("passes the private key as its file, never in argv", async () => {
    const state: HostState = { exists: true, kind: "wireguard", mtu: 1380, up: true, addresses: ["100.64.0.5/32"], routes: [], privateKey: undefined, listenPort: 51820 };
    const runner = fakeHost(state);
    await ensureInterface({ ...desired(), routes: [], runner });
    const set = runner.calls.find((c) => c.argv[0] === "wg" && c.argv[1] === "set");
    expect(set?.argv, "wg set argv").toEqual(["wg", "set", NAME, "private-key", keyPath]);
    expect(state.privateKey, "key set").toBe(key.toBase64());
    expect(runner.calls.some((c) => c.argv.join(" ").includes(key.toBase64())), "key must not appear in any argv").toBe(false);
  });

  it("refuses to take over a same-named link that is not WireGuard", async () => {
    const state: HostState = { exists: true, kind: "veth", mtu: 1500, up: true, addresses: [], routes: [], privateKey: undefined, listenPort: 0 };
    const err = await ensureInterface({ ...desired(), runner: fakeHost(state) }).catch((e: unknown) => e);
    expect(err, `got ${String(err)}, want InterfaceError`).toBeInstanceOf(InterfaceError);
  });

  it("rejects invalid interface names before running anything", async () => {
    const runner = fakeHost({ exists: false, kind: "", mtu: 0, up: false, addresses: [], routes: [], privateKey: undefined, listenPort: 0 });
    for (const name of ["", "a-name-that-is-too-long", "bad name", "x/y"]) {
      const err = await ensureInterface({ ...desired(), name, runner }).catch((e: unknown) => e);
      expect(err, `name ${JSON.stringify(name)}: got ${String(err)}, want InterfaceError`).toBeInstanceOf(InterfaceError);
    }
    expect(runner.calls, "no command run").toEqual([]);
  });

  it("deleteInterface reports whether there was anything to delete", async () => {
    const state: HostState = { exists: true, kind: "wireguard", mtu: 1420, up: true, addresses: [], routes: [], privateKey: undefined, listenPort: 0 };
    const runner = fakeHost(state);
    const first = await deleteInterface(NAME, { runner });
    const second = await deleteInterface(NAME, { runner });
    expect([first, second], `got ${first},${second}, want true,false`).toEqual([true, false]);
  });
});
