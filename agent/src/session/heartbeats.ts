/**
 * Heartbeats: every `heartbeatSeconds` (set by the controller at enrollment), and once at start,
 * this node publishes on `weft.v1.node.<id>.heartbeat` what WireGuard shows of its peers (last
 * handshake, endpoint), the peers revision it applied and its session epoch. The controller
 * reads them for liveness and for the endpoints NAT gave this node. A failed beat is logged;
 * the next one tries again.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects, type Heartbeat } from "@weft/protocol";
import type { Logger } from "pino";
import type { StateHolder } from "../state/holder.js";
import type { StatusReporter } from "../status/reporter.js";
import type { ActualPeer, WireGuard } from "../wireguard/index.js";

/** The heartbeat message (pure). */
export function heartbeat(node: { nodeId: string; sessionEpoch?: string | undefined }, appliedRevision: number, peers: readonly ActualPeer[], now: Date): Heartbeat {
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
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
    })),
  };
}

export interface HeartbeatsOptions {
  nc: NatsConnection;
  wireguard: WireGuard;
  state: StateHolder;
  status: StatusReporter;
  log: Logger;
}

export class Heartbeats {
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: HeartbeatsOptions) {}

  /** Beats now and then every `heartbeatSeconds`. */
  start(): void {
    this.#timer = setInterval(() => void this.beat(), this.o.state.current.heartbeatSeconds * 1000);
    void this.beat();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Publishes one heartbeat (nothing once the connection is closed); never throws. */
  async beat(): Promise<void> {
    const { nc, wireguard, state, status, log } = this.o;
    if (nc.isClosed()) return;
    try {
      const shown = await wireguard.show();
      nc.publish(Subjects.heartbeat(state.current.nodeId), JSON.stringify(heartbeat(state.current, status.current.appliedRevision, shown?.peers ?? [], new Date())));
    } catch (err) {
      log.warn({ err }, "heartbeat failed");
    }
  }
}
