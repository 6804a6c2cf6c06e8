/**
 * Watches this node's path plan: the key `<nodeId>` of `weft-node-paths` (the relay for each
 * peer behind NAT, hole-punching rounds, and on a relay node its sessions), the only key of that
 * bucket an agent may read. Consumer-free like every key an agent reads: the mechanics are
 * key-watch.ts's (a core subscription on the subject the stream republishes the key's writes on, a
 * direct get of its last message at start and on resync).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, NodePathsRecord, type Logger } from "@weft/protocol";
import { OwnKeyWatch } from "./key-watch.js";

export type NodePathsListener = (record: NodePathsRecord | null, revision: number) => void;

export class NodePathsWatch extends OwnKeyWatch<typeof NodePathsRecord> {
  constructor(nc: NatsConnection, nodeId: string, onRecord: NodePathsListener, log: Logger) {
    super(nc, {
      bucket: Buckets.nodePaths,
      key: nodeId,
      schema: NodePathsRecord,
      accept: (record) => (record.nodeId === nodeId ? undefined : `names node ${record.nodeId}, not this node`),
      onRecord,
      log,
    });
  }
}
