/**
 * Watches this node's compiled policy: the key `<nodeId>` of `weft-node-policies`, the only key of
 * that bucket an agent may read. Consumer-free like every key an agent reads: the mechanics (a core
 * subscription on the subject the stream republishes the key's writes on, with their revisions; a
 * direct get at start and on resync; strictly increasing revisions) are key-watch.ts's.
 *
 * `onRecord` gets the record, or null when the key does not exist or was deleted. A record that
 * does not parse, or names another node, is logged and never applied (the last good one stays).
 * Limit: a bucket recreated from scratch restarts revisions at 1; restart the agent.
 *
 * A large policy comes in chunks (`<nodeId>.0`, `<nodeId>.1`, …, read with the same direct get):
 * the controller writes them before the record that names their count and digest. The record is
 * reported with every chunk's entries joined, and only when each chunk carries the record's digest
 * and the joined entries hash to it: all of one compilation or nothing. A chunk of another
 * compilation means the controller is writing a newer one; its record's notification reads again.
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { AnyNodePolicyRecord, Buckets, NodePolicyChunk, Subjects, nodePolicyChunkKey, type CompactPolicyEntry, type Logger, type NodePolicyRecord } from "@weft/protocol";
import { OwnKeyWatch } from "./key-watch.js";

export type NodePolicyListener = (record: NodePolicyRecord | null, revision: number) => void;

/** The subject every stored write of `nodeId`'s key is republished on. */
export function nodePolicySubject(nodeId: string): string {
  return Subjects.keyUpdates(Buckets.nodePolicies, nodeId);
}

export class NodePolicyWatch extends OwnKeyWatch<typeof AnyNodePolicyRecord, NodePolicyRecord> {
  constructor(nc: NatsConnection, nodeId: string, onRecord: NodePolicyListener, log: Logger) {
    super(nc, {
      bucket: Buckets.nodePolicies,
      key: nodeId,
      schema: AnyNodePolicyRecord,
      accept: (record) => (record.nodeId === nodeId ? undefined : `record names node ${record.nodeId}`),
      resolve: (record, at) => (record.chunks ? joinChunks(at.kv, nodeId, record, at.revision, log) : Promise.resolve(record)),
      onRecord,
      log,
    });
  }

  /** The highest revision applied (0: no key yet; -1: nothing read yet). */
  get appliedRevision(): number {
    return this.revision;
  }
}

/** The record with its chunks' entries joined, or undefined when the chunks are not all of its compilation. */
async function joinChunks(kv: KV, nodeId: string, record: NodePolicyRecord, revision: number, log: Logger): Promise<NodePolicyRecord | undefined> {
  const { count, digest } = record.chunks!;
  const entries: CompactPolicyEntry[] = [];
  for (let i = 0; i < count; i++) {
    const got = await kv.get(nodePolicyChunkKey(nodeId, i));
    let json: unknown;
    try {
      json = got?.operation === "PUT" ? got.json() : undefined;
    } catch {
      json = undefined;
    }
    const chunk = NodePolicyChunk.safeParse(json);
    if (!chunk.success || chunk.data.nodeId !== nodeId || chunk.data.index !== i || chunk.data.digest !== digest) {
      log.info({ node: nodeId, revision, chunk: i, of: count }, "node policy chunk is not of this compilation (a newer one is being written); waiting for its record");
      return undefined;
    }
    entries.push(...chunk.data.entries);
  }
  if (createHash("sha256").update(JSON.stringify(entries)).digest("hex") !== digest) {
    log.warn({ node: nodeId, revision }, "node policy chunks do not hash to their record's digest; keeping the last applied policy");
    return undefined;
  }
  const { chunks: _chunks, ...rest } = record;
  return { ...rest, entries };
}
