/**
 * Heartbeats from agents on `weft.v1.node.*.heartbeat`: each valid one, on the node's own
 * subject, updates the node's liveness; a new interface epoch is recorded in the node record
 * through the registry (peers behind NAT re-handshake when they see it). Malformed heartbeats,
 * and heartbeats naming another node than their subject, are dropped.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Heartbeat, Subjects, nodeIdFromSubject } from "@weft/protocol";
import type { Logger } from "pino";
import type { Liveness } from "./liveness.js";
import type { NodeRegistry } from "./registry.js";

export function listenForHeartbeats(nc: NatsConnection, liveness: Liveness, registry: Pick<NodeRegistry, "updateNode">, log: Logger): Subscription {
  // Last interface epoch recorded per node, so a heartbeat costs a KV write only when it changes.
  const epochs = new Map<string, string>();
  const noteEpoch = (nodeId: string, epoch: string | undefined) => {
    if (epoch === undefined || epochs.get(nodeId) === epoch) return;
    epochs.set(nodeId, epoch);
    registry
      .updateNode(nodeId, (node) => (node.sessionEpoch === epoch ? undefined : { ...node, sessionEpoch: epoch }))
      .then((got) => {
        if (got.outcome === "updated") log.info({ node: nodeId, epoch }, "node's WireGuard interface was recreated; peers will re-handshake");
      })
      .catch((err: unknown) => {
        epochs.delete(nodeId); // try again with the next heartbeat
        log.warn({ node: nodeId, err }, "cannot record the node's session epoch");
      });
  };
  return nc.subscribe(Subjects.allHeartbeats, {
    callback: (err, msg) => {
      if (err) {
        log.warn({ err }, "heartbeat subscription error");
        return;
      }
      const subjectNode = nodeIdFromSubject(msg.subject);
      let parsed: ReturnType<typeof Heartbeat.safeParse>;
      try {
        parsed = Heartbeat.safeParse(msg.json());
      } catch {
        log.warn({ subject: msg.subject }, "dropping heartbeat that is not JSON");
        return;
      }
      if (!parsed.success || parsed.data.nodeId !== subjectNode) {
        log.warn({ subject: msg.subject }, "dropping malformed heartbeat or one naming another node");
        return;
      }
      liveness.record(parsed.data);
      noteEpoch(parsed.data.nodeId, parsed.data.sessionEpoch);
    },
  });
}
