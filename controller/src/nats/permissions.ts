/**
 * The NATS permission template of an agent user: a pure function of the node id.
 *
 * An agent may publish only under its own node root, may read the peers bucket without any
 * consumer (a batched direct get of the stream for the snapshot, a core subscription on the
 * stream's republish subject for changes), and may read its own key of weft-node-policies, of
 * weft-node-services and of weft-node-paths (its NAT path plan) (a
 * subscription on the subject its stream republishes the key's writes on and a direct get of the
 * key's last message; see
 * kvKeyReadSubjects; the chunks of a large policy, `<id>.<n>`, by direct get only), and the trust bundle's one key the same way (the SPIFFE CA certificates and
 * JWT public keys: public material). SVID and every other request go under the node root. It may
 * subscribe only under its own inbox prefix, the peers republish subject, its own policy, services
 * and path-plan keys and the trust bundle key. No `$JS.API.CONSUMER.*` subject is granted, so an agent creates
 * no consumer at all — none durable, none that outlives its connection, no push consumer aimed at
 * another inbox — and deleting a node leaves nothing behind. Everything else is denied by
 * omission: no `$KV.>` publish (no bucket writes), no other node's subjects, no other bucket's
 * stream, no `weft.>` subscription.
 */
import { Buckets, NODE_ID_PATTERN, Subjects, TRUST_BUNDLE_KEY } from "@weft/protocol";
import { InvalidNodeIdError } from "./errors.js";

/** Allow lists in the shape of a NATS user JWT's `pub`/`sub` claims. */
export interface AgentPermissions {
  readonly pub: { readonly allow: readonly string[] };
  readonly sub: { readonly allow: readonly string[] };
}

/** The JetStream stream that backs a KV bucket. */
export function kvStreamName(bucket: string): string {
  return `KV_${bucket}`;
}

/** Throws InvalidNodeIdError unless nodeId matches NODE_ID_PATTERN. */
export function assertNodeId(nodeId: string): void {
  if (typeof nodeId !== "string" || !NODE_ID_PATTERN.test(nodeId)) throw new InvalidNodeIdError(String(nodeId));
}

/**
 * Read access to a whole KV bucket without consumers (nats-server 2.11+, history 1):
 * - pub `$JS.API.DIRECT.GET.<stream>`: batched direct gets (`{seq, batch}`) read the stream in
 *   sequence order; with one message per key that is every current record (peer-watch.ts);
 * - sub `<republish prefix>.>`: the stream republishes every stored write there with its
 *   sequence, so a core subscription sees each change exactly once, ordered by sequence.
 * Not granted: consumer create or delete, `STREAM.INFO`, `STREAM.MSG.GET`, flow control.
 */
export function kvBucketReadSubjects(bucket: string, republishWildcard: string): { pub: string[]; sub: string[] } {
  return { pub: [`$JS.API.DIRECT.GET.${kvStreamName(bucket)}`], sub: [republishWildcard] };
}

/**
 * Read access to ONE key of a bucket, without consumers:
 * - sub `weft.v1.kv.<bucket>.<key>`: where the bucket's stream republishes every stored put or
 *   delete of the key with its revision (controller/src/nats/connect.ts, republishOf), seen live
 *   by a core subscription;
 * - sub `$KV.<bucket>.<key>`: the subject the write itself is published on, which agents of
 *   releases before the republish follow (a notice only: they read the key after it);
 * - pub `$JS.API.DIRECT.GET.<stream>.$KV.<bucket>.<key>`: the last message of that
 *   subject (kv.get on a bucket opened with `allow_direct: true`). The server refuses
 *   a request body on this form, so it cannot be turned into a get by sequence.
 * Not granted: `STREAM.MSG.GET` (its body names any subject or sequence), consumer
 * create, `STREAM.INFO`.
 */
export function kvKeyReadSubjects(bucket: string, key: string): { pub: string[]; sub: string[] } {
  return {
    pub: [`$JS.API.DIRECT.GET.${kvStreamName(bucket)}.$KV.${bucket}.${key}`],
    sub: [Subjects.keyUpdates(bucket, key), `$KV.${bucket}.${key}`],
  };
}

/**
 * The permissions of the agent user of one node. Throws InvalidNodeIdError.
 * SVID requests (`weft.v1.node.<id>.svid.x509|jwt`) fall under the node root; the trust bundle is
 * one key every agent may read (public material: CA certificates and JWT public keys).
 */
export function agentPermissions(nodeId: string): AgentPermissions {
  assertNodeId(nodeId);
  const ownPolicy = kvKeyReadSubjects(Buckets.nodePolicies, nodeId);
  const peers = kvBucketReadSubjects(Buckets.peers, Subjects.allPeerUpdates);
  // The chunks of a large compiled policy, `<nodeId>.<index>`: read by direct get like the record (no live subscription needed).
  const ownChunks = kvKeyReadSubjects(Buckets.nodePolicies, `${nodeId}.*`);
  const ownServices = kvKeyReadSubjects(Buckets.nodeServices, nodeId);
  const ownPaths = kvKeyReadSubjects(Buckets.nodePaths, nodeId);
  const bundle = kvKeyReadSubjects(Buckets.trustBundle, TRUST_BUNDLE_KEY);
  return {
    pub: { allow: [`${Subjects.nodeRoot(nodeId)}.>`, ...peers.pub, ...ownPolicy.pub, ...ownChunks.pub, ...ownServices.pub, ...ownPaths.pub, ...bundle.pub] },
    sub: { allow: [`${Subjects.inboxPrefix(nodeId)}.>`, ...peers.sub, ...ownPolicy.sub, ...ownServices.sub, ...ownPaths.sub, ...bundle.sub] },
  };
}
