/**
 * The datapath benchmark's machine, built from scratch in its own network namespaces (prefix
 * `wdb-`), no lab, controller or agent:
 *
 *   wdb-wa (workload A)        wdb-a (host A)                      wdb-b (host B)        wdb-wb (workload B)
 *   eth0 10.77.1.2/32 ── veth ── wl0 169.254.1.1   ul0 192.168.77.1 ── veth ── ul0 192.168.77.2   wl0 ── veth ── eth0 10.77.2.2/32
 *                              wdb-wga 100.64.0.1  ═══ wireguard-go, UDP 51820 ═══  wdb-wgb 100.64.0.2
 *                              vx0 (VXLAN, external, 4789)                  vx0 (VXLAN, external, 4789)
 *
 * Workloads are plumbed like agent/src/workloads/plumbing.ts (a /32 on eth0, default route via
 * the link-local gateway on the host end). The WireGuard interfaces have machine-unique names
 * because wireguard-go's UAPI sockets (/var/run/wireguard/<ifname>.sock) are shared by every
 * namespace. tc programs are attached with `tc … bpf object-pinned` from inside the namespace
 * (libbpf's tc calls work on the caller's namespace), so the bpffs is mounted under /run, which
 * `ip netns exec` keeps visible (it remounts /sys, hiding /sys/fs/bpf).
 */
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { WEFT_VXLAN_MAC } from "@weft/bpf";
import { BenchError } from "./errors.js";
import { readDevice } from "./handshakes.js";
import { inNs, must, run } from "./datapath-sys.js";
import { parseIfindex, parseLinkStats, type LinkCounters } from "./datapath-parse.js";

export const PREFIX = "wdb-";
export const RUN_DIR = "/run/wdb-bench";
export const BPFFS = join(RUN_DIR, "bpf");

export interface HostEnd {
  /** Host namespace. */
  ns: string;
  underlay: string;
  /** WireGuard interface (machine-unique name) and its overlay address. */
  wg: string;
  overlay: string;
  /** Identity of the overlay address (part 1) and of the workload (part 2). */
  overlayId: number;
  workloadNs: string;
  workload: string;
  workloadId: number;
  /** The workload prefix this host owns (WireGuard allowed IPs, tunnel map key). */
  workloadPrefix: string;
}

export const UNDERLAY_DEV = "ul0";
export const WORKLOAD_DEV = "wl0";
export const VXLAN_DEV = "vx0";
export const WORKLOAD_GATEWAY = "169.254.1.1";
export const WG_PORT = 51820;
export const VXLAN_PORT = 4789;

export const HOST_A: HostEnd = {
  ns: "wdb-a",
  underlay: "192.168.77.1",
  wg: "wdb-wga",
  overlay: "100.64.0.1",
  overlayId: 1000,
  workloadNs: "wdb-wa",
  workload: "10.77.1.2",
  workloadId: 1100,
  workloadPrefix: "10.77.1.0/24",
};
export const HOST_B: HostEnd = {
  ns: "wdb-b",
  underlay: "192.168.77.2",
  wg: "wdb-wgb",
  overlay: "100.64.0.2",
  overlayId: 2000,
  workloadNs: "wdb-wb",
  workload: "10.77.2.2",
  workloadId: 2100,
  workloadPrefix: "10.77.2.0/24",
};

export interface TopologyOptions {
  /** MTU of the WireGuard interfaces (DESIGN.md default 1420). */
  wgMtu: number;
  /** MTU of the workload veths, whichever path their traffic takes. */
  workloadMtu: number;
  /** MTU of the VXLAN devices (underlay 1500 − 50). */
  vxlanMtu: number;
}

const ip = (ns: string, ...argv: string[]) => must(["ip", "-n", ns, ...argv]);
const sysctl = (ns: string, ...kv: string[]) => must(inNs(ns, ["sysctl", "-q", "-w", ...kv]));

/** Builds the namespaces, underlay, workloads, VXLAN devices and the wireguard-go tunnel. */
export async function buildTopology(o: TopologyOptions): Promise<void> {
  for (const h of [HOST_A, HOST_B]) {
    for (const ns of [h.ns, h.workloadNs]) {
      await must(["ip", "netns", "add", ns]);
      await ip(ns, "link", "set", "lo", "up");
    }
  }
  // Underlay: one veth between the hosts.
  await ip(HOST_A.ns, "link", "add", UNDERLAY_DEV, "type", "veth", "peer", "name", UNDERLAY_DEV, "netns", HOST_B.ns);
  for (const h of [HOST_A, HOST_B]) {
    await ip(h.ns, "addr", "add", `${h.underlay}/24`, "dev", UNDERLAY_DEV);
    await ip(h.ns, "link", "set", UNDERLAY_DEV, "up");
    // Hosts route workload traffic; decapsulated VXLAN arrives on vx0 from a source routed elsewhere.
    await sysctl(h.ns, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0");
    await plumbWorkload(h, o.workloadMtu);
    await ip(h.ns, "link", "add", VXLAN_DEV, "address", WEFT_VXLAN_MAC, "mtu", String(o.vxlanMtu), "type", "vxlan", "external", "dstport", String(VXLAN_PORT));
    await sysctl(h.ns, `net.ipv4.conf.${VXLAN_DEV}.rp_filter=0`);
    await ip(h.ns, "link", "set", VXLAN_DEV, "up");
  }
  await buildWireguard(o.wgMtu);
}

/** A workload namespace hanging off its host by a veth, as Weft's agent plumbs one. */
async function plumbWorkload(h: HostEnd, mtu: number): Promise<void> {
  await ip(h.ns, "link", "add", WORKLOAD_DEV, "mtu", String(mtu), "type", "veth", "peer", "name", "eth0", "netns", h.workloadNs);
  await ip(h.ns, "link", "set", WORKLOAD_DEV, "up");
  await ip(h.ns, "addr", "add", `${WORKLOAD_GATEWAY}/32`, "dev", WORKLOAD_DEV, "scope", "link");
  await ip(h.ns, "route", "add", `${h.workload}/32`, "dev", WORKLOAD_DEV);
  await ip(h.workloadNs, "link", "set", "eth0", "mtu", String(mtu), "up");
  await ip(h.workloadNs, "addr", "add", `${h.workload}/32`, "dev", "eth0");
  await ip(h.workloadNs, "route", "add", `${WORKLOAD_GATEWAY}/32`, "dev", "eth0", "scope", "link");
  await ip(h.workloadNs, "route", "add", "default", "via", WORKLOAD_GATEWAY, "dev", "eth0", "onlink");
}

async function buildWireguard(mtu: number): Promise<void> {
  const keyDir = join(RUN_DIR, "keys");
  await mkdir(keyDir, { recursive: true, mode: 0o700 });
  const keys = new Map<HostEnd, { file: string; publicKey: string }>();
  for (const h of [HOST_A, HOST_B]) {
    const privateKey = (await must(["wg", "genkey"])).trim();
    const publicKey = (await must(["wg", "pubkey"], { input: `${privateKey}\n` })).trim();
    const file = join(keyDir, `${h.wg}.key`);
    await writeFile(file, `${privateKey}\n`, { mode: 0o600 }); // wg reads keys from a file, never argv
    keys.set(h, { file, publicKey });
    await startWireguardGo(h.ns, h.wg);
  }
  for (const [self, peer] of [
    [HOST_A, HOST_B],
    [HOST_B, HOST_A],
  ] as const) {
    const k = keys.get(self);
    const pk = keys.get(peer);
    if (!k || !pk) throw new BenchError("wireguard keys missing");
    const allowed = `${peer.overlay}/32,${peer.workloadPrefix}`;
    await must(inNs(self.ns, ["wg", "set", self.wg, "listen-port", String(WG_PORT), "private-key", k.file, "peer", pk.publicKey, "endpoint", `${peer.underlay}:${WG_PORT}`, "allowed-ips", allowed]));
    await ip(self.ns, "addr", "add", `${self.overlay}/32`, "dev", self.wg);
    await ip(self.ns, "link", "set", "dev", self.wg, "mtu", String(mtu), "up");
    await ip(self.ns, "route", "add", `${peer.overlay}/32`, "dev", self.wg);
  }
}

/**
 * `wireguard-go IFACE` in `ns`: it daemonizes and exits; then wait for its UAPI socket. Launched
 * detached, in its own session, as the agent launches Weft's (see handwg.ts for why it matters
 * with autogroup scheduling), without LOG_LEVEL (else the daemon keeps our pipes).
 */
async function startWireguardGo(ns: string, iface: string): Promise<void> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "LOG_LEVEL" && !k.startsWith("WG_")));
  const [file, ...args] = inNs(ns, ["wireguard-go", iface]) as [string, ...string[]];
  const launcher = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env, detached: true });
  let output = "";
  launcher.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
  launcher.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
  const code = await new Promise<number | null>((resolve) => {
    launcher.on("error", () => resolve(null));
    launcher.on("close", (c) => resolve(c));
  });
  if (code !== 0) throw new BenchError(`wireguard-go ${iface} in ${ns}: exit ${code}: ${output.split("\n").filter((l) => !/^[┌│└]/.test(l)).join(" ").trim()}`);
  for (let i = 0; i < 100; i++) {
    if ((await readDevice(iface)) !== undefined) return;
    await sleep(50);
  }
  throw new BenchError(`wireguard-go ${iface} in ${ns}: its UAPI socket did not answer within 5 s`);
}

/** How a host reaches the other host's workload: plain routing over the underlay, or the WireGuard interface. */
export type WorkloadRoute = "underlay" | "wireguard";

/** Points each host's route to the other workload at the underlay or at WireGuard. */
export async function routeWorkloads(via: WorkloadRoute): Promise<void> {
  for (const [self, peer] of [
    [HOST_A, HOST_B],
    [HOST_B, HOST_A],
  ] as const) {
    const target = via === "underlay" ? ["via", peer.underlay, "dev", UNDERLAY_DEV] : ["dev", self.wg];
    await ip(self.ns, "route", "replace", `${peer.workload}/32`, ...target);
  }
}

export type Hook = "ingress" | "egress";

/** Attaches a pinned tc program (direct action) to dev's hook inside ns, replacing what was there. */
export async function attachPinned(ns: string, dev: string, hook: Hook, pinnedProgram: string): Promise<void> {
  await must(inNs(ns, ["tc", "qdisc", "replace", "dev", dev, "clsact"]));
  await must(inNs(ns, ["tc", "filter", "replace", "dev", dev, hook, "prio", "1", "handle", "1", "bpf", "direct-action", "object-pinned", pinnedProgram]));
}

/** Removes the clsact qdisc of dev (every tc program on both hooks); fine when there is none. */
export async function detachAll(ns: string, dev: string): Promise<void> {
  const r = await run(inNs(ns, ["tc", "qdisc", "del", "dev", dev, "clsact"]));
  if (r.exitCode !== 0 && !/No such file|Cannot find|Invalid handle|not exist/i.test(r.stderr)) throw new BenchError(`tc qdisc del dev ${dev} clsact in ${ns}: ${r.stderr.trim()}`);
}

/** Names of the tc programs on dev's hook (empty when none). */
export async function attachedPrograms(ns: string, dev: string, hook: Hook): Promise<string[]> {
  const r = await run(inNs(ns, ["tc", "filter", "show", "dev", dev, hook]));
  return [...r.stdout.matchAll(/ name (\S+) tag /g)].map((m) => m[1] ?? "");
}

export async function ifindexOf(ns: string, dev: string): Promise<number> {
  return parseIfindex(await ip(ns, "-j", "link", "show", "dev", dev));
}

export async function linkCounters(ns: string, dev: string): Promise<LinkCounters> {
  return parseLinkStats(await ip(ns, "-s", "-j", "link", "show", "dev", dev));
}

/** Pings until one reply (the first packet on a WireGuard path starts its handshake). */
export async function reachable(ns: string, address: string, tries = 10): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    const r = await run(inNs(ns, ["ping", "-n", "-c", "1", "-W", "1", address]));
    if (r.exitCode === 0) return true;
  }
  return false;
}
