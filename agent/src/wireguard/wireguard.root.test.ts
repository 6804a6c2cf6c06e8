/**
 * Root integration: two network namespaces joined by a veth, a wireguard-go interface in
 * each, peered over the veth. Checks traffic over the overlay, then that re-applying the same
 * desired state changes nothing (same ifindex, same wireguard-go process, same handshake),
 * that an allowed-IP change is a single update, and that removal removes.
 *
 * wireguard-go's UAPI sockets live in /var/run/wireguard for every namespace, so the
 * interface names here are unique on the machine (wgt-a0, wgt-b0).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, access } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWireGuard, InterfaceError, type DesiredPeer, type WireGuard } from "./index.js";
import { PrivateKey, writePrivateKeyFile } from "./keys.js";
import { readDevice } from "./peers.js";
import { parseUapiGet, uapiGet, uapiSocketPath } from "./uapi.js";
import { UAPI_SOCKET_DIR } from "./userspace.js";
import { createCommandRunner, type CommandRunner } from "../exec/runner.js";
import { findExecutableSync } from "../exec/testing.js";

const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const haveWireguard = findExecutableSync("wg") !== undefined && findExecutableSync("ip") !== undefined;

const NS_A = "wgt-a";
const NS_B = "wgt-b";
const IF_A = "wgt-a0";
const IF_B = "wgt-b0";
const VETH_A = "wgt-va";
const VETH_B = "wgt-vb";
const OVERLAY_A = "100.64.200.1";
const OVERLAY_B = "100.64.200.2";
const PORT = 51820;

const run = async (...argv: string[]): Promise<string> => {
  const [file = "", ...args] = argv;
  return (await exec(file, args)).stdout;
};
const quiet = (...argv: string[]): Promise<unknown> => run(...argv).catch(() => undefined);

/** PIDs of wireguard-go daemons serving one of `names` (matched on their exact argv). */
async function wireguardGoPids(names: readonly string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const [bin = "", name = "", ...rest] = argv.split("\0").filter((s) => s !== "");
    if (bin.endsWith("wireguard-go") && names.includes(name) && rest.length === 0) pids.push(Number(entry));
  }
  return pids;
}

/** Removes everything this test creates; safe to call when some or none of it exists. */
async function cleanup(): Promise<void> {
  await quiet("ip", "netns", "exec", NS_A, "ip", "link", "del", IF_A);
  await quiet("ip", "netns", "exec", NS_B, "ip", "link", "del", IF_B);
  for (const pid of await wireguardGoPids([IF_A, IF_B])) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  await quiet("ip", "netns", "del", NS_A);
  await quiet("ip", "netns", "del", NS_B);
  await quiet("ip", "link", "del", VETH_A);
  for (const ifname of [IF_A, IF_B]) {
    const sock = `/var/run/wireguard/${ifname}.sock`;
    if ((await wireguardGoPids([ifname])).length === 0) await rm(sock, { force: true });
  }
}

// A UDP echo over the overlay ("ping" without needing iputils-ping on the machine).
const ECHO_SERVER = `
const s = require("node:dgram").createSocket("udp4");
s.on("message", (m, r) => s.send(m, r.port, r.address));
s.bind(7007, process.argv[1], () => console.log("ready"));
`;
const ECHO_CLIENT = `
const s = require("node:dgram").createSocket("udp4");
const [host, count] = [process.argv[1], Number(process.argv[2])];
const rtts = []; let seq = 0, sentAt = 0, timer;
function send() {
  if (rtts.length === count) { console.log(JSON.stringify(rtts)); process.exit(0); }
  seq++; sentAt = process.hrtime.bigint();
  s.send(String(seq), 7007, host);
  timer = setTimeout(() => { if (seq > count + 10) { console.log(JSON.stringify(rtts)); process.exit(1); } send(); }, 1000);
}
s.on("message", (m) => {
  if (String(m) !== String(seq)) return;
  clearTimeout(timer); rtts.push(Number(process.hrtime.bigint() - sentAt) / 1e6); setTimeout(send, 50);
});
send();
`;

function startEchoServer(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", NS_B, process.execPath, "-e", ECHO_SERVER, OVERLAY_B], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    child.on("error", reject);
    child.stdout.once("data", () => resolve(child));
  });
}

async function udpPing(count: number): Promise<number[]> {
  const { stdout } = await exec("ip", ["netns", "exec", NS_A, process.execPath, "-e", ECHO_CLIENT, OVERLAY_B, String(count)], {
    timeout: 20_000,
  });
  return JSON.parse(stdout) as number[];
}

describe.skipIf(!isRoot || !haveWireguard)("wireguard - root integration over two namespaces", () => {
  let dir = "";
  let keyA = "";
  let keyB = "";
  let pubA = "";
  let pubB = "";
  let wgA: WireGuard;
  let wgB: WireGuard;
  let echo: ChildProcess | undefined;
  const peersOfA = (allowedIps = [`${OVERLAY_B}/32`]): DesiredPeer[] => [
    { publicKey: pubB, endpoint: `10.99.0.2:${PORT}`, allowedIps },
  ];
  // B knows no endpoint for A: it learns it from A's handshake, like a peer behind NAT.
  const peersOfB = (): DesiredPeer[] => [{ publicKey: pubA, allowedIps: [`${OVERLAY_A}/32`] }];
  const ensureA = () =>
    wgA.ensure({ privateKeyPath: keyA, listenPort: PORT, mtu: 1420, addresses: [`${OVERLAY_A}/32`], routes: ["100.64.200.0/24"] });
  const ensureB = () =>
    wgB.ensure({ privateKeyPath: keyB, listenPort: PORT, mtu: 1420, addresses: [`${OVERLAY_B}/32`], routes: ["100.64.200.0/24"] });

  beforeAll(async () => {
    await cleanup();
    dir = await mkdtemp(join(tmpdir(), "weft-wg-root-"));
    keyA = join(dir, "a.key");
    keyB = join(dir, "b.key");
    const [a, b] = [PrivateKey.generate(), PrivateKey.generate()];
    await writePrivateKeyFile(keyA, a);
    await writePrivateKeyFile(keyB, b);
    pubA = a.publicKey();
    pubB = b.publicKey();
    await run("ip", "netns", "add", NS_A);
    await run("ip", "netns", "add", NS_B);
    await run("ip", "link", "add", VETH_A, "netns", NS_A, "type", "veth", "peer", "name", VETH_B, "netns", NS_B);
    for (const [ns, veth, addr] of [
      [NS_A, VETH_A, "10.99.0.1/24"],
      [NS_B, VETH_B, "10.99.0.2/24"],
    ] as const) {
      await run("ip", "-n", ns, "address", "add", addr, "dev", veth);
      await run("ip", "-n", ns, "link", "set", veth, "up");
      await run("ip", "-n", ns, "link", "set", "lo", "up");
    }
    wgA = createWireGuard({ name: IF_A, netns: NS_A, implementation: "userspace" });
    wgB = createWireGuard({ name: IF_B, netns: NS_B, implementation: "userspace" });
  }, 30_000);

  afterAll(async () => {
    echo?.kill();
    await cleanup();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it("creates both interfaces with wireguard-go and carries traffic over the overlay", async () => {
    const t0 = performance.now();
    const resA = await ensureA();
    const createMs = performance.now() - t0;
    const resB = await ensureB();
    expect(resA.created && resB.created, `got created=${resA.created},${resB.created}, want true,true`).toBe(true);
    const create = resA.actions.find((x) => x.kind === "create");
    expect(create, "create action").toMatchObject({ kind: "create", implementation: "userspace" });
    const launchMs = create?.kind === "create" ? create.elapsedMs : -1;
    console.log(
      `wireguard-go: detect+launch+wait ${launchMs} ms, whole ensure ${createMs.toFixed(0)} ms; ` +
        `actions ${resA.actions.map((x) => x.kind).join(",")}`,
    );

    const sA = await wgA.syncPeers(peersOfA());
    const sB = await wgB.syncPeers(peersOfB());
    expect([sA.added, sB.added], `got added ${sA.added},${sB.added}, want 1,1`).toEqual([1, 1]);

    echo = await startEchoServer();
    const rtts = await udpPing(5);
    expect(rtts.length, `got ${rtts.length} echo replies, want 5`).toBe(5);
    const [first = 0, ...rest] = rtts;
    console.log(
      `overlay UDP echo RTT: first (incl. handshake) ${first.toFixed(2)} ms, then ${rest.map((r) => r.toFixed(2)).join(", ")} ms`,
    );

    const showA = await wgA.show();
    const peer = showA?.peers[0];
    expect(peer?.latestHandshake, "A records a handshake with B").toBeInstanceOf(Date);
    expect((peer?.rxBytes ?? 0) > 0 && (peer?.txBytes ?? 0) > 0, `got rx=${peer?.rxBytes} tx=${peer?.txBytes}, want both > 0`).toBe(true);
    const showB = await wgB.show();
    expect(showB?.peers[0]?.endpoint, "B learned A's endpoint from the handshake").toBe(`10.99.0.1:${PORT}`);
  }, 30_000);

  it("wireguard - the UAPI socket reads what `wg show dump` shows, and createWireGuard reads it without spawning wg", async () => {
    // After the traffic test: a peer with a handshake, an endpoint, counters and allowed IPs.
    const viaWg = await readDevice(IF_A, { netns: NS_A });
    const viaUapi = parseUapiGet(await uapiGet(uapiSocketPath(UAPI_SOCKET_DIR, IF_A)));
    const strip = (d: typeof viaWg) => ({ ...d, peers: d.peers.map((p) => ({ ...p, rxBytes: 0, txBytes: 0 })) }); // counters move between the reads
    expect(strip(viaUapi), `UAPI ${JSON.stringify(strip(viaUapi))}, want wg's ${JSON.stringify(strip(viaWg))}`).toEqual(strip(viaWg));
    expect(viaUapi.peers[0]?.latestHandshake, "a handshake read through UAPI").toBeInstanceOf(Date);
    const argvs: string[][] = [];
    const real = createCommandRunner({ netns: NS_A });
    const recording: CommandRunner = { netns: NS_A, run: (argv, opts) => (argvs.push([...argv]), real.run(argv, opts)) };
    const peers = await createWireGuard({ name: IF_A, runner: recording, uapiSocketDir: UAPI_SOCKET_DIR }).peers();
    expect(peers.map((p) => p.publicKey), "peers through UAPI").toEqual([pubB]);
    expect(argvs, "commands run to read the peers of a wireguard-go device").toEqual([]);
  }, 30_000);

  it("refuses a name already served by wireguard-go in another namespace, with a clear error", async () => {
    // The UAPI socket directory is shared by all namespaces: wgt-a0 in wgt-b collides.
    const clash = createWireGuard({ name: IF_A, netns: NS_B, implementation: "userspace" });
    const err = await clash
      .ensure({ privateKeyPath: keyB, addresses: [], routes: [] })
      .catch((e: unknown) => e);
    expect(err, `got ${String(err)}, want InterfaceError`).toBeInstanceOf(InterfaceError);
    expect(String(err), "message carries wireguard-go's reason").toContain("unix socket in use");
    const links = await run("ip", "-n", NS_B, "-o", "link", "show");
    expect(links.includes(IF_A), `no half-made ${IF_A} left in ${NS_B}:\n${links}`).toBe(false);
  }, 30_000);

  it("re-applying identical desired state changes nothing and does not flap", async () => {
    const before = await wgA.show();
    const beforeB = await wgB.show();
    const pidsBefore = await wireguardGoPids([IF_A]);
    const handshake = before?.peers[0]?.latestHandshake?.getTime();

    const eA = await ensureA();
    const eB = await ensureB();
    const sA = await wgA.syncPeers(peersOfA());
    const sB = await wgB.syncPeers(peersOfB());
    expect(eA.actions, `got ensure actions A ${JSON.stringify(eA.actions)}, want none`).toEqual([]);
    expect(eB.actions, `got ensure actions B ${JSON.stringify(eB.actions)}, want none`).toEqual([]);
    const counts = [sA.added, sA.removed, sA.updated, sB.added, sB.removed, sB.updated];
    expect(counts, `got peer changes ${counts.join(",")}, want all 0`).toEqual([0, 0, 0, 0, 0, 0]);

    const after = await wgA.show();
    const afterB = await wgB.show();
    expect(after?.ifindex, `got ifindex ${after?.ifindex}, want ${before?.ifindex}`).toBe(before?.ifindex);
    expect(await wireguardGoPids([IF_A]), "same wireguard-go process").toEqual(pidsBefore);
    expect(after?.peers[0]?.latestHandshake?.getTime(), `handshake: got ${after?.peers[0]?.latestHandshake?.toISOString()}, want unchanged`).toBe(
      handshake,
    );
    expect((after?.peers[0]?.rxBytes ?? 0) >= (before?.peers[0]?.rxBytes ?? 0), "counters not reset").toBe(true);
    expect(afterB?.peers[0]?.endpoint, "B's learned endpoint kept").toBe(beforeB?.peers[0]?.endpoint);
  }, 30_000);

  it("an allowed-IP change is applied as a single update", async () => {
    const handshake = (await wgA.show())?.peers[0]?.latestHandshake?.getTime();
    const s = await wgA.syncPeers(peersOfA([`${OVERLAY_B}/32`, "10.77.0.0/16"]));
    const want = { added: 0, removed: 0, updated: 1, changes: [{ kind: "update", publicKey: pubB, allowedIps: ["10.77.0.0/16", `${OVERLAY_B}/32`] }] };
    expect(s, `got ${JSON.stringify(s)}, want ${JSON.stringify(want)}`).toEqual(want);
    const peer = (await wgA.show())?.peers[0];
    expect([...(peer?.allowedIps ?? [])].sort(), "wg show reflects the new set").toEqual(["10.77.0.0/16", `${OVERLAY_B}/32`]);
    expect(peer?.latestHandshake?.getTime(), "session kept across the update").toBe(handshake);
  }, 30_000);

  it("removing the peer removes it from wg show", async () => {
    const s = await wgA.syncPeers([]);
    expect([s.added, s.removed, s.updated], `got ${s.added},${s.removed},${s.updated}, want 0,1,0`).toEqual([0, 1, 0]);
    const dump = await run("ip", "netns", "exec", NS_A, "wg", "show", IF_A, "dump");
    expect(dump.includes(pubB), `wg show still lists ${pubB}:\n${dump}`).toBe(false);
  }, 30_000);

  it("wireguard - through the UAPI socket a wireguard-go device's peers are added, changed and removed without spawning wg", async () => {
    const argvs: string[][] = [];
    const real = createCommandRunner({ netns: NS_A });
    const recording: CommandRunner = { netns: NS_A, run: (argv, opts) => (argvs.push([...argv]), real.run(argv, opts)) };
    const viaUapi = createWireGuard({ name: IF_A, runner: recording, uapiSocketDir: UAPI_SOCKET_DIR });
    const peerB = async () => (await readDevice(IF_A, { netns: NS_A })).peers.find((p) => p.publicKey === pubB);

    const added = await viaUapi.syncPeers([{ ...peersOfA()[0]!, persistentKeepalive: 25 }]);
    expect([added.added, added.removed, added.updated], "added").toEqual([1, 0, 0]);
    const first = await peerB();
    expect(first?.endpoint, "wg show: endpoint").toBe(peersOfA()[0]?.endpoint);
    expect(first?.allowedIps, "wg show: allowed IPs").toEqual([`${OVERLAY_B}/32`]);
    expect(first?.persistentKeepalive, "wg show: keepalive").toBe(25);

    const changed = await viaUapi.syncPeers(peersOfA([`${OVERLAY_B}/32`, "10.77.0.0/16"]));
    expect([changed.added, changed.removed, changed.updated], "changed").toEqual([0, 0, 1]);
    const second = await peerB();
    expect([...(second?.allowedIps ?? [])].sort(), "wg show: the new set replaced the old").toEqual(["10.77.0.0/16", `${OVERLAY_B}/32`]);
    expect(second?.persistentKeepalive, "wg show: keepalive off").toBeUndefined();

    const removed = await viaUapi.syncPeers([]);
    expect([removed.added, removed.removed, removed.updated], "removed").toEqual([0, 1, 0]);
    expect(await peerB(), "wg show: gone").toBeUndefined();
    expect(argvs, "commands run to change a wireguard-go device's peers").toEqual([]);
  }, 30_000);

  it("destroy deletes the interface and wireguard-go exits", async () => {
    const t0 = performance.now();
    expect(await wgA.destroy(), "destroy returns true when it deleted").toBe(true);
    const deadline = Date.now() + 3000;
    while ((await wireguardGoPids([IF_A])).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    console.log(`destroy until wireguard-go exited: ${(performance.now() - t0).toFixed(0)} ms`);
    expect(await wireguardGoPids([IF_A]), "no wireguard-go left for the interface").toEqual([]);
    expect(await wgA.show(), "show() after destroy").toBeUndefined();
    const sockGone = await access(`/var/run/wireguard/${IF_A}.sock`).then(
      () => false,
      () => true,
    );
    expect(sockGone, "UAPI socket removed").toBe(true);
    expect(await wgA.destroy(), "second destroy is a no-op").toBe(false);
  }, 30_000);
});
