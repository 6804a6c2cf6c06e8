/**
 * Heartbeats: every `heartbeatSeconds` (set by the controller at enrollment), and once at start,
 * this node publishes on `weft.v1.node.<id>.heartbeat` what WireGuard shows of its peers (last
 * handshake, endpoint, and the path and round-trip time the path manager measured), the peers
 * revision it applied and its session epoch. The controller reads them for liveness, for the
 * endpoints NAT gave this node's peers (the reflexive endpoints of NAT'd nodes) and for which
 * pairs run direct. `soon()` sends one early (at most every 500 ms): after a path or an endpoint
 * changed. A failed beat is logged; the next one tries again.
 *
 * A beat holds at most HEARTBEAT_PEERS_MAX peers (peersToReport): with every peer in every beat, a
 * node of a fleet of ~2,800 or more would exceed its credential's payload limit (and be
 * disconnected by the server at every beat), and the controller would parse N peers from each of N
 * nodes every few seconds.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { HEARTBEAT_PEERS_MAX, Subjects, type Heartbeat, type PeerHandshake } from "@weft/protocol";
import type { Logger } from "pino";
import type { StateHolder } from "../state/holder.js";
import type { StatusReporter } from "../status/reporter.js";
import type { ActualPeer, WireGuard } from "../wireguard/index.js";

/** What the path manager says about one peer (nat/manager.ts). */
export type PathReport = (publicKey: string) => Pick<PeerHandshake, "path" | "via" | "rttMs">;

/**
 * The peers one heartbeat reports (pure): all of them while they fit in `max`; past that, first
 * the ones `first` says the controller needs (reflexive endpoints and paths come from them), then
 * the others in turns: the next ones by key after `cursor` (the last key reported), wrapping
 * around, so each is reported at least every ceil(others / room) beats. Returns the next cursor.
 */
export function peersToReport(peers: readonly ActualPeer[], max: number, first: (publicKey: string) => boolean, cursor: string): { peers: ActualPeer[]; cursor: string } {
  if (peers.length <= max) return { peers: [...peers], cursor };
  const needed: ActualPeer[] = [];
  const others: ActualPeer[] = [];
  for (const p of peers) (first(p.publicKey) ? needed : others).push(p);
  // More needed peers than room: they take turns among themselves.
  const [fixed, turns] = needed.length >= max ? [[], needed] : [needed, others];
  const room = max - fixed.length;
  turns.sort((a, b) => (a.publicKey < b.publicKey ? -1 : a.publicKey > b.publicKey ? 1 : 0));
  let start = turns.findIndex((p) => p.publicKey > cursor);
  if (start < 0) start = 0;
  const taken = Array.from({ length: Math.min(room, turns.length) }, (_, i) => turns[(start + i) % turns.length]!);
  return { peers: [...fixed, ...taken], cursor: taken.at(-1)?.publicKey ?? cursor };
}

/** The heartbeat message (pure). `peerCount`: how many peers the node has, when `peers` holds fewer. */
export function heartbeat(node: { nodeId: string; sessionEpoch?: string | undefined }, appliedRevision: number, peers: readonly ActualPeer[], now: Date, paths?: PathReport, peerCount = peers.length): Heartbeat {
  return {
    version: 1,
    nodeId: node.nodeId,
    sentAt: now.toISOString(),
    ...(node.sessionEpoch ? { sessionEpoch: node.sessionEpoch } : {}),
    ...(peerCount > peers.length ? { peerCount } : {}),
    appliedRevision,
    peers: peers.map((p) => ({
      publicKey: p.publicKey,
      ...(p.latestHandshake ? { lastHandshake: Math.floor(p.latestHandshake.getTime() / 1000) } : {}),
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      ...paths?.(p.publicKey),
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
    })),
  };
}

export interface HeartbeatsOptions {
  nc: NatsConnection;
  /**
   * Where the peers are read (only the peers, no link; WireGuard's UAPI socket where there is one).
   * A control-plane-only caller, like the scale benchmark, answers none.
   */
  wireguard: Pick<WireGuard, "peers">;
  state: Pick<StateHolder, "current">;
  status: Pick<StatusReporter, "current">;
  log: Logger;
  paths?: PathReport;
  /** Peers a beat that cannot hold every peer reports first (the path manager's reportFirst). */
  reportFirst?: (publicKey: string) => boolean;
  /** Told what each beat read of the device (the peer reconciler remembers endpoints from it). */
  observed?: (peers: readonly ActualPeer[]) => void;
}

/** Early beats no closer together than this. */
const SOON_MS = 500;

export class Heartbeats {
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #lastAt = 0;
  /** The last peer (by key) reported in turns. */
  #cursor = "";

  constructor(private readonly o: HeartbeatsOptions) {}

  /** Beats now and then every `heartbeatSeconds`. */
  start(): void {
    this.#timer = setInterval(() => void this.beat(), this.o.state.current.heartbeatSeconds * 1000);
    void this.beat();
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
  }

  /** A beat soon (coalesced, at most one per 500 ms): something the controller acts on changed. */
  soon(): void {
    if (this.#soon) return;
    const wait = Math.max(0, this.#lastAt + SOON_MS - Date.now());
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.beat();
    }, wait);
    this.#soon.unref();
  }

  /** Publishes one heartbeat (nothing once the connection is closed); never throws. */
  async beat(): Promise<void> {
    const { nc, wireguard, state, status, log } = this.o;
    if (nc.isClosed()) return;
    this.#lastAt = Date.now();
    try {
      // No interface (deleted under the agent): a beat with no peers; liveness does not depend on WireGuard.
      const read = await wireguard.peers().catch(() => undefined);
      if (read) this.o.observed?.(read);
      const all = read ?? [];
      const { peers, cursor } = peersToReport(all, HEARTBEAT_PEERS_MAX, this.o.reportFirst ?? (() => false), this.#cursor);
      this.#cursor = cursor;
      nc.publish(Subjects.heartbeat(state.current.nodeId), JSON.stringify(heartbeat(state.current, status.current.appliedRevision, peers, new Date(), this.o.paths, all.length)));
    } catch (err) {
      log.warn({ err }, "heartbeat failed");
    }
  }
}
