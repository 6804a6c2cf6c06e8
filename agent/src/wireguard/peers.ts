/**
 * Peers: read them from `wg show dump`, diff desired against actual (a pure function), and
 * apply only the difference with `wg set`. Unchanged peers are never rewritten, so their
 * sessions, counters and handshakes survive every sync.
 *
 * Diff rules:
 * - allowed IPs compare as sets of canonical prefixes (`10.0.0.1` ≡ `10.0.0.1/32`, any order);
 * - an endpoint is set only when the desired peer has one and it differs: a desired peer
 *   without endpoint never clears the endpoint WireGuard learned from the peer (NAT roaming);
 * - persistent keepalive 0, "off" and absent are the same thing;
 * - actual peers absent from the desired list are removed.
 */
import { parseEndpoint } from "@weft/protocol";
import { canonicalEndpoint, canonicalPrefix } from "./cidr.js";
import { parseDump, type ActualPeer, type DeviceDump } from "./dump.js";
import { InvalidDesiredStateError } from "./errors.js";
import { createCommandRunner, type CommandRunner } from "../exec/runner.js";
import { isValidKey } from "./keys.js";

export interface DesiredPeer {
  publicKey: string;
  /** "ip:port" or "[ipv6]:port" (IP literal: wg would print a resolved hostname differently and
   * every sync would rewrite it). Absent: keep whatever endpoint WireGuard learned. */
  endpoint?: string;
  /** CIDR prefixes routed to and accepted from this peer. */
  allowedIps: string[];
  /** Seconds; 0 or absent means off. */
  persistentKeepalive?: number;
}

export type PeerChange =
  | { kind: "add"; peer: DesiredPeer }
  | { kind: "remove"; publicKey: string }
  | {
      kind: "update";
      publicKey: string;
      /** Set only when the endpoint changes. */
      endpoint?: string;
      /** The complete new set, when it changes. */
      allowedIps?: string[];
      /** The new keepalive when it changes; 0 turns it off. */
      persistentKeepalive?: number;
    };

/** Where to run `wg`: a runner, or a namespace to build one for (default: current namespace). */
export interface WgTarget {
  netns?: string;
  runner?: CommandRunner;
}

const runnerFor = (target: WgTarget): CommandRunner => target.runner ?? createCommandRunner({ netns: target.netns });

/** Peers per `wg set` invocation: keeps argv far below ARG_MAX for large meshes. */
const PEERS_PER_INVOCATION = 64;

/** The interface line and peers of `wg show IFNAME dump`. */
export async function readDevice(ifname: string, target: WgTarget = {}): Promise<DeviceDump> {
  const { stdout } = await runnerFor(target).run(["wg", "show", ifname, "dump"]);
  return parseDump(stdout);
}

/** The interface's peers as WireGuard currently has them. */
export async function readPeers(ifname: string, target: WgTarget = {}): Promise<ActualPeer[]> {
  return (await readDevice(ifname, target)).peers;
}

const keepaliveOf = (v: number | undefined): number => v ?? 0;

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Canonical, de-duplicated, sorted prefixes. */
function canonicalSet(prefixes: readonly string[]): string[] {
  return [...new Set(prefixes.map(canonicalPrefix))].sort();
}

/** Validates desired peers and returns them in canonical form, keyed by public key. */
export function normalizeDesired(desired: readonly DesiredPeer[]): Map<string, DesiredPeer> {
  const byKey = new Map<string, DesiredPeer>();
  const owner = new Map<string, string>();
  for (const p of desired) {
    if (!isValidKey(p.publicKey)) {
      throw new InvalidDesiredStateError(`desired peer has an invalid public key: ${JSON.stringify(p.publicKey)}`);
    }
    if (byKey.has(p.publicKey)) throw new InvalidDesiredStateError(`desired peer ${p.publicKey} is listed twice`);
    const ka = p.persistentKeepalive;
    if (ka !== undefined && (!Number.isInteger(ka) || ka < 0 || ka > 65535)) {
      throw new InvalidDesiredStateError(`desired peer ${p.publicKey}: persistent keepalive ${ka} is not 0..65535`);
    }
    const allowedIps = canonicalSet(p.allowedIps);
    for (const ip of allowedIps) {
      const other = owner.get(ip);
      // WireGuard gives an allowed IP to the last peer set: two owners would flap on every sync.
      if (other !== undefined) {
        throw new InvalidDesiredStateError(`allowed IP ${ip} is desired for two peers: ${other} and ${p.publicKey}`);
      }
      owner.set(ip, p.publicKey);
    }
    if (p.endpoint !== undefined && parseEndpoint(p.endpoint.trim(), { ipv6: true }) === undefined) {
      throw new InvalidDesiredStateError(
        `desired peer ${p.publicKey}: endpoint ${JSON.stringify(p.endpoint)} is not ip:port or [ipv6]:port (resolve hostnames first)`,
      );
    }
    const peer: DesiredPeer = { publicKey: p.publicKey, allowedIps };
    if (p.endpoint !== undefined) peer.endpoint = canonicalEndpoint(p.endpoint);
    if (ka !== undefined && ka !== 0) peer.persistentKeepalive = ka;
    byKey.set(p.publicKey, peer);
  }
  return byKey;
}

/**
 * The changes that turn `actual` into `desired`: removes first, then updates, then adds,
 * each sorted by public key. Pure; throws `InvalidDesiredStateError` on invalid desired state.
 */
export function diffPeers(desired: readonly DesiredPeer[], actual: readonly ActualPeer[]): PeerChange[] {
  const want = normalizeDesired(desired);
  const have = new Map(actual.map((p) => [p.publicKey, p]));
  const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const removes: PeerChange[] = [];
  const updates: PeerChange[] = [];
  const adds: PeerChange[] = [];
  for (const key of [...have.keys()].sort(byKey)) {
    if (!want.has(key)) removes.push({ kind: "remove", publicKey: key });
  }
  for (const key of [...want.keys()].sort(byKey)) {
    const w = want.get(key);
    if (w === undefined) continue;
    const h = have.get(key);
    if (h === undefined) {
      adds.push({ kind: "add", peer: w });
      continue;
    }
    const update: PeerChange & { kind: "update" } = { kind: "update", publicKey: key };
    let changed = false;
    if (w.endpoint !== undefined && (h.endpoint === undefined || canonicalEndpoint(h.endpoint) !== w.endpoint)) {
      update.endpoint = w.endpoint;
      changed = true;
    }
    if (!sameSet(w.allowedIps, canonicalSet(h.allowedIps))) {
      update.allowedIps = w.allowedIps;
      changed = true;
    }
    if (keepaliveOf(w.persistentKeepalive) !== keepaliveOf(h.persistentKeepalive)) {
      update.persistentKeepalive = keepaliveOf(w.persistentKeepalive);
      changed = true;
    }
    if (changed) updates.push(update);
  }
  return [...removes, ...updates, ...adds];
}

/** The `wg set` arguments (after `wg set IFNAME`) for one change. */
export function peerChangeArgs(change: PeerChange): string[] {
  switch (change.kind) {
    case "remove":
      return ["peer", change.publicKey, "remove"];
    case "add": {
      const p = change.peer;
      const args = ["peer", p.publicKey];
      if (p.endpoint !== undefined) args.push("endpoint", p.endpoint);
      if (p.allowedIps.length > 0) args.push("allowed-ips", p.allowedIps.join(","));
      if (p.persistentKeepalive !== undefined && p.persistentKeepalive !== 0) {
        args.push("persistent-keepalive", String(p.persistentKeepalive));
      }
      return args;
    }
    case "update": {
      const args = ["peer", change.publicKey];
      if (change.endpoint !== undefined) args.push("endpoint", change.endpoint);
      // allowed-ips replaces the peer's whole set; "" clears it.
      if (change.allowedIps !== undefined) args.push("allowed-ips", change.allowedIps.join(","));
      if (change.persistentKeepalive !== undefined) {
        args.push("persistent-keepalive", change.persistentKeepalive === 0 ? "off" : String(change.persistentKeepalive));
      }
      return args;
    }
  }
}

/** Applies changes with as few `wg set` invocations as practical (64 peers per call), in order. */
export async function applyPeerChanges(ifname: string, changes: readonly PeerChange[], target: WgTarget = {}): Promise<void> {
  const runner = runnerFor(target);
  for (let i = 0; i < changes.length; i += PEERS_PER_INVOCATION) {
    const args = changes.slice(i, i + PEERS_PER_INVOCATION).flatMap(peerChangeArgs);
    await runner.run(["wg", "set", ifname, ...args]);
  }
}
