/**
 * Heartbeats: every `heartbeatSeconds` (set by the controller at enrollment), and once at start,
 * this node publishes on `weft.v1.node.<id>.heartbeat` what WireGuard shows of its peers (last
 * handshake, endpoint, and the path and round-trip time the path manager measured), the peers
 * revision it applied and its session epoch. The controller reads them for liveness, for the
 * endpoints NAT gave this node's peers (the reflexive endpoints of NAT'd nodes) and for which
 * pairs run direct. `soon()` sends one early (at most every 500 ms): after a path or an endpoint
 * changed. A failed beat is logged; the next one tries again.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects, type Heartbeat, type PeerHandshake } from "@weft/protocol";
import type { Logger } from "pino";
import type { StateHolder } from "../state/holder.js";
import type { StatusReporter } from "../status/reporter.js";
import type { ActualPeer, WireGuard } from "../wireguard/index.js";

/** What the path manager says about one peer (nat/manager.ts). */
export type PathReport = (publicKey: string) => Pick<PeerHandshake, "path" | "via" | "rttMs">;

/** The heartbeat message (pure). */
export function heartbeat(node: { nodeId: string; sessionEpoch?: string | undefined }, appliedRevision: number, peers: readonly ActualPeer[], now: Date, paths?: PathReport): Heartbeat {
  return {
    version: 1,
    nodeId: node.nodeId,
    sentAt: now.toISOString(),
    ...(node.sessionEpoch ? { sessionEpoch: node.sessionEpoch } : {}),
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
}

/** Early beats no closer together than this. */
const SOON_MS = 500;

export class Heartbeats {
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #lastAt = 0;

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
      const peers = await wireguard.peers().catch(() => []);
      nc.publish(Subjects.heartbeat(state.current.nodeId), JSON.stringify(heartbeat(state.current, status.current.appliedRevision, peers, new Date(), this.o.paths)));
    } catch (err) {
      log.warn({ err }, "heartbeat failed");
    }
  }
}
