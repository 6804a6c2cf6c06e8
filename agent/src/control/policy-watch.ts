/**
 * Watches this node's compiled policy: the key `<nodeId>` of `weft-node-policies`, the only key
 * of that bucket an agent may read (own-key-watch.ts: a subscription on the key's subject, then a
 * direct get; `onRecord` gets strictly increasing revisions, null when there is no key; a
 * malformed record, or one naming another node, is logged and never applied).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, NodePolicyRecord, type Logger } from "@weft/protocol";
import { OwnKeyWatch, ownKeySubject, type OwnKeyListener } from "./own-key-watch.js";

export type NodePolicyListener = OwnKeyListener<NodePolicyRecord>;

/** The core subject every write of `nodeId`'s key is published on. */
export function nodePolicySubject(nodeId: string): string {
  return ownKeySubject(Buckets.nodePolicies, nodeId);
}

export class NodePolicyWatch extends OwnKeyWatch<NodePolicyRecord> {
  constructor(nc: NatsConnection, nodeId: string, onRecord: NodePolicyListener, log: Logger) {
    super({ bucket: Buckets.nodePolicies, schema: NodePolicyRecord, what: "node policy" }, nc, nodeId, onRecord, log);
  }
}
