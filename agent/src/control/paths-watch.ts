/**
 * Watches this node's path plan: the key `<nodeId>` of `weft-node-paths` (the relay for each
 * peer behind NAT, hole-punching rounds, and on a relay node its sessions), the only key of that
 * bucket an agent may read. The mechanics are own-key-watch.ts's.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, NodePathsRecord, type Logger } from "@weft/protocol";
import { OwnKeyWatch, type OwnKeyListener } from "./own-key-watch.js";

export class NodePathsWatch extends OwnKeyWatch<NodePathsRecord> {
  constructor(nc: NatsConnection, nodeId: string, onRecord: OwnKeyListener<NodePathsRecord>, log: Logger) {
    super({ bucket: Buckets.nodePaths, schema: NodePathsRecord, what: "node paths" }, nc, nodeId, onRecord, log);
  }
}
