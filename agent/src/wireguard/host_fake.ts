/**
 * A fake host for tests: one WireGuard interface (link, key, port, MTU, addresses, routes and
 * peers) and the routes of the host's other devices, answering the `ip` and `wg` commands the
 * agent runs (through the fake CommandRunner) and changing its state the way they would. A
 * command it does not know fails the test loudly, unless `extra` answers it.
 */
import { readFileSync } from "node:fs";
import { commandFailure, createFakeRunner, type FakeHandler, type FakeRunner } from "../exec/runner_fake.js";
import { familyOf } from "./cidr.js";
import { PrivateKey } from "./keys.js";

export interface FakePeer {
  publicKey: string;
  endpoint?: string;
  allowedIps: string[];
  persistentKeepalive?: number;
  /** Unix seconds; absent: never. */
  latestHandshake?: number;
}

/** The host state the fake `ip`/`wg` answer from and mutate. */
export interface HostState {
  exists: boolean;
  kind: string;
  mtu: number;
  up: boolean;
  addresses: string[];
  /** Routes through the interface ("87": installed by the agent; "boot": someone else's). */
  routes: Array<{ dst: string; protocol: string }>;
  privateKey: string | undefined;
  listenPort: number;
  peers?: FakePeer[];
  /** Main-table routes of the host's other devices (its LAN, a VPN, a bridge). */
  otherRoutes?: Array<{ dst: string; dev: string }>;
}

export const FAKE_IFNAME = "weft0";

export function fakeHost(state: HostState, options: { name?: string; extra?: FakeHandler } = {}): FakeRunner {
  const name = options.name ?? FAKE_IFNAME;
  const handle: FakeHandler = (argv, runOptions) => {
    const a = argv.join(" ");
    // `ip -batch -`: each line of the input as its own `ip` command, in order, stopping at the first that fails.
    if (a === "ip -batch -") {
      for (const line of (runOptions?.input ?? "").split("\n")) if (line !== "") handle(["ip", ...line.split(" ")], undefined);
      return undefined;
    }
    if (a === `ip -details -json addr show dev ${name}`) {
      if (!state.exists) throw commandFailure(argv, `Device "${name}" does not exist.\n`);
      return JSON.stringify([
        {
          ifindex: 7,
          ifname: name,
          flags: state.up ? ["POINTOPOINT", "NOARP", "UP"] : ["POINTOPOINT", "NOARP"],
          mtu: state.mtu,
          linkinfo: { info_kind: state.kind },
          addr_info: state.addresses.map((x) => {
            const [local, len] = x.split("/");
            return { family: "inet", local, prefixlen: Number(len), scope: "global" };
          }),
        },
      ]);
    }
    const route = /^ip -json -([46]) route show table main dev /.exec(a);
    if (route !== null) {
      const fam = Number(route[1]);
      return JSON.stringify(
        state.routes.filter((r) => familyOf(r.dst) === fam).map((r) => (r.protocol === "boot" ? { dst: r.dst } : { dst: r.dst, protocol: r.protocol })),
      );
    }
    if (a === "ip -j -4 route show table main") {
      const own = state.exists ? state.routes.filter((r) => familyOf(r.dst) === 4).map((r) => ({ dst: r.dst, dev: name })) : [];
      return JSON.stringify([...(state.otherRoutes ?? []), ...own]);
    }
    if (a === `wg show ${name} dump`) {
      if (!state.exists) throw commandFailure(argv, `Unable to access interface: No such device\n`);
      const pub = state.privateKey === undefined ? "(none)" : PrivateKey.fromBase64(state.privateKey).publicKey();
      const peers = (state.peers ?? []).map((p) =>
        [p.publicKey, "(none)", p.endpoint ?? "(none)", p.allowedIps.join(",") || "(none)", String(p.latestHandshake ?? 0), "0", "0", p.persistentKeepalive ? String(p.persistentKeepalive) : "off"].join("\t"),
      );
      return [`${state.privateKey ?? "(none)"}\t${pub}\t${state.listenPort}\toff`, ...peers].join("\n") + "\n";
    }
    if (a === `ip link add dev ${name} type wireguard`) {
      Object.assign(state, { exists: true, kind: "wireguard", mtu: 1420, up: false, listenPort: 0, peers: [] });
      return undefined;
    }
    if (argv[0] === "wg" && argv[1] === "set" && argv[2] === name) {
      wgSet(state, argv.slice(3));
      return undefined;
    }
    let m = new RegExp(`^ip link set dev ${name} mtu (\\d+)$`).exec(a);
    if (m !== null) {
      state.mtu = Number(m[1]);
      return undefined;
    }
    if (a === `ip link set dev ${name} up`) {
      state.up = true;
      return undefined;
    }
    m = new RegExp(`^ip address (add|del) (\\S+) dev ${name}$`).exec(a);
    if (m !== null) {
      const [, op, addr = ""] = m;
      state.addresses = op === "add" ? [...state.addresses, addr] : state.addresses.filter((x) => x !== addr);
      return undefined;
    }
    m = new RegExp(`^ip route (replace|del) (\\S+) dev ${name} proto 87$`).exec(a);
    if (m !== null) {
      const [, op, dst = ""] = m;
      state.routes = state.routes.filter((r) => r.dst !== dst);
      if (op === "replace") state.routes.push({ dst, protocol: "87" });
      return undefined;
    }
    if (a === `ip link del dev ${name}`) {
      state.exists = false;
      return undefined;
    }
    if (options.extra) return options.extra(argv, runOptions);
    throw new Error(`fake host: unexpected command: ${a}`);
  };
  return createFakeRunner(handle);
}

/** `wg set <iface>` arguments, as wg applies them: interface settings, then peers in order. */
function wgSet(state: HostState, args: readonly string[]): void {
  let peer: FakePeer | undefined;
  const peers = () => (state.peers ??= []);
  for (let i = 0; i < args.length; ) {
    const [k, v = ""] = [args[i], args[i + 1]];
    if (k === "private-key") state.privateKey = readFileSync(v, "utf8").trim();
    else if (k === "listen-port") state.listenPort = Number(v);
    else if (k === "peer") {
      peer = peers().find((p) => p.publicKey === v);
      if (!peer) peers().push((peer = { publicKey: v, allowedIps: [] }));
    } else if (k === "remove" && peer) {
      const gone = peer;
      state.peers = peers().filter((p) => p !== gone);
      peer = undefined;
      i += 1;
      continue;
    } else if (k === "endpoint" && peer) peer.endpoint = v;
    else if (k === "allowed-ips" && peer) peer.allowedIps = v === "" ? [] : v.split(",");
    else if (k === "persistent-keepalive" && peer) {
      if (v === "off" || v === "0") delete peer.persistentKeepalive;
      else peer.persistentKeepalive = Number(v);
    } else throw new Error(`fake host: unexpected wg set argument ${String(k)} in ${args.join(" ")}`);
    i += 2;
  }
}
