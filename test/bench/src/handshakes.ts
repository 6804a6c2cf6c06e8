/**
 * Watching WireGuard handshakes from outside the lab's namespaces. wireguard-go's UAPI socket
 * (`/var/run/wireguard/<iface>.sock`) lives on the shared filesystem, so the root namespace can
 * ask every host's interface for its peers with one unix-socket round trip — what `wg show`
 * does, without forking `ip netns exec … wg` seven times every 50 ms on a two-core machine
 * (that would slow down the very start-up being timed). The UAPI also gives the handshake time
 * to the nanosecond, where `wg show latest-handshakes` rounds to the second.
 */
import { createConnection } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseUapiGet, type UapiDevice } from "./parse.js";

/** Where wireguard-go puts UAPI sockets; one directory for every network namespace. */
export const UAPI_SOCKET_DIR = "/var/run/wireguard";

export const uapiSocket = (iface: string): string => join(UAPI_SOCKET_DIR, `${iface}.sock`);

/** One `get=1` round trip; undefined when the interface (its socket) does not exist yet. */
export async function readDevice(iface: string, timeoutMs = 1000): Promise<UapiDevice | undefined> {
  const text = await new Promise<string | undefined>((resolve) => {
    const sock = createConnection({ path: uapiSocket(iface) });
    let buf = "";
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write("get=1\n\n"));
    sock.on("data", (d: string) => {
      buf += d;
      if (/errno=-?\d+\n\n/.test(buf)) done(buf);
    });
    sock.on("error", () => done(undefined));
    sock.on("close", () => done(buf.includes("errno=") ? buf : undefined));
  });
  return text === undefined ? undefined : parseUapiGet(text);
}

export interface HandshakeTarget {
  host: string;
  iface: string;
  /** How many peers must have a fresh handshake. */
  peers: number;
}

export interface HandshakeTiming {
  host: string;
  /** When the poll first saw `peers` fresh handshakes, ms after t0; null = not within the timeout. */
  detectedMs: number | null;
  /** When the last of those handshakes completed (wireguard-go's own timestamp), ms after t0. */
  handshakeMs: number | null;
  /** Peers with a fresh handshake at the end (= `peers` unless it timed out). */
  freshPeers: number;
  /** Public keys (hex) of configured peers still without a fresh handshake at the end. */
  waitingFor: string[];
  /** Per peer (public key, hex): when its first fresh handshake completed, ms after t0; null = none. */
  peerHandshakeMs: Record<string, number | null>;
}

export interface WatchOptions {
  /** Epoch ms; a handshake is fresh when it completed at or after t0. */
  t0: number;
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Polls every target's interface until each has a handshake completed after t0 with all of its
 * peers, or the timeout passes. Never throws for a missing interface (it counts as 0 peers).
 */
export async function watchHandshakes(targets: readonly HandshakeTarget[], o: WatchOptions): Promise<HandshakeTiming[]> {
  const results = new Map<string, HandshakeTiming>(targets.map((t) => [t.host, { host: t.host, detectedMs: null, handshakeMs: null, freshPeers: 0, waitingFor: [], peerHandshakeMs: {} }]));
  const deadline = o.t0 + o.timeoutMs;
  for (;;) {
    o.signal?.throwIfAborted();
    const pending = targets.filter((t) => results.get(t.host)?.detectedMs === null);
    if (pending.length === 0) break;
    const now = Date.now();
    await Promise.all(
      pending.map(async (t) => {
        const device = await readDevice(t.iface);
        const seenAt = Date.now();
        const peers = device?.peers ?? [];
        const fresh = peers.map((p) => p.lastHandshakeMs).filter((ms) => ms >= o.t0);
        const r = results.get(t.host) as HandshakeTiming;
        r.freshPeers = fresh.length;
        r.waitingFor = peers.filter((p) => p.lastHandshakeMs < o.t0).map((p) => p.publicKeyHex);
        for (const p of peers) {
          if (p.lastHandshakeMs >= o.t0) r.peerHandshakeMs[p.publicKeyHex] ??= p.lastHandshakeMs - o.t0;
          else r.peerHandshakeMs[p.publicKeyHex] ??= null;
        }
        if (fresh.length >= t.peers) {
          r.detectedMs = seenAt - o.t0;
          r.handshakeMs = Math.max(...fresh) - o.t0;
        }
      }),
    );
    if (Date.now() >= deadline) break;
    await sleep(Math.max(0, (o.intervalMs ?? 50) - (Date.now() - now)));
  }
  return targets.map((t) => results.get(t.host) as HandshakeTiming);
}

/** Peers whose session is still usable (handshake younger than WireGuard's 180 s reject-after-time). */
export async function liveSessions(iface: string): Promise<number> {
  const device = await readDevice(iface);
  const now = Date.now();
  return (device?.peers ?? []).filter((p) => p.lastHandshakeMs > 0 && now - p.lastHandshakeMs < 180_000).length;
}
