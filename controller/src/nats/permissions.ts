/**
 * The NATS permission template of an agent user: a pure function of the node id.
 *
 * An agent may publish only under its own node root, may read (watch and get)
 * the peers bucket through the few JetStream API subjects that needs, and may read
 * its own key of weft-node-policies and of weft-node-paths (a subscription on its
 * `$KV` subject and a direct get of that subject's last message; see kvKeyReadSubjects). It may
 * subscribe only under its own inbox prefix, which is also where the ordered push
 * consumer behind `kv.watch()` delivers (nats.js derives the deliver subject from the
 * connection's `inboxPrefix`). Everything else is denied by omission: no `$KV.>`
 * publish (no bucket writes), no other node's subjects, no other bucket's stream,
 * no `weft.>` subscription.
 *
 * Known limit (nats-server 2.9): a CONSUMER.CREATE permission cannot constrain the
 * consumer's deliver_subject, which travels in the request body. The server delivers
 * a push consumer only while some client holds a *literal* subscription on exactly
 * that subject, so an agent can aim copies of peers records at a literal subscription
 * elsewhere in the WEFT account (streams subscribe with wildcards, so never into a
 * bucket). Controller code must not give literal core subscriptions authority, and
 * can drop messages whose reply subject starts with `$JS.ACK.`.
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
 * The minimal publish subjects to read one KV bucket with @nats-io/kv 3.x
 * (`new Kvm(nc).open(bucket)`, `kv.watch()`, `kv.get()`) against nats-server 2.9,
 * each found necessary by removing it and watching the client fail:
 * - `$JS.API.CONSUMER.CREATE.<stream>.>`: the ordered push consumer behind watch();
 *   2.9 has the extended `CONSUMER.CREATE.<stream>.<name>.<filter>` form, which
 *   nats.js uses (the legacy `CONSUMER.CREATE.<stream>` is not needed);
 * - `$JS.API.CONSUMER.DELETE.<stream>.>`: an ordered consumer deletes its old
 *   consumer when it resets after a sequence gap or missed heartbeats;
 * - `$JS.FC.<stream>.>`: flow-control replies; without it a snapshot of more than a
 *   few MB stalls;
 * - `$JS.API.STREAM.MSG.GET.<stream>`: kv.get(). open() binds without reading the
 *   stream info, so the client does not know allow_direct and uses a message get;
 * - `$JS.API.STREAM.INFO.<stream>`: kv.status(), which the agent reads before a
 *   watch to tell an empty bucket (no snapshot entries will come) from a snapshot
 *   still in flight. Read-only: it reveals message counts, not values.
 * Not needed: `$JS.API.INFO`, `CONSUMER.INFO` (watch() reads the consumer info
 * returned by create), `DIRECT.GET`.
 */
export function kvReadSubjects(bucket: string): string[] {
  const stream = kvStreamName(bucket);
  return [
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.FC.${stream}.>`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.STREAM.INFO.${stream}`,
  ];
}

/**
 * Read access to ONE key of a bucket, without consumers (nats-server 2.9 cannot
 * confine a consumer to a filter subject: the create subject carries no filter):
 * - sub `$KV.<bucket>.<key>`: the subject every put/delete of the key is published
 *   on, seen live by a core subscription;
 * - pub `$JS.API.DIRECT.GET.<stream>.$KV.<bucket>.<key>`: the last message of that
 *   subject (kv.get on a bucket opened with `allow_direct: true`). The server refuses
 *   a request body on this form, so it cannot be turned into a get by sequence.
 * Not granted: `STREAM.MSG.GET` (its body names any subject or sequence), consumer
 * create, `STREAM.INFO`.
 */
export function kvKeyReadSubjects(bucket: string, key: string): { pub: string[]; sub: string[] } {
  return {
    pub: [`$JS.API.DIRECT.GET.${kvStreamName(bucket)}.$KV.${bucket}.${key}`],
    sub: [`$KV.${bucket}.${key}`],
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
  // The chunks of a large compiled policy, `<nodeId>.<index>`: read by direct get like the record (no live subscription needed).
  const ownChunks = kvKeyReadSubjects(Buckets.nodePolicies, `${nodeId}.*`);
  const ownPaths = kvKeyReadSubjects(Buckets.nodePaths, nodeId);
  const bundle = kvKeyReadSubjects(Buckets.trustBundle, TRUST_BUNDLE_KEY);
  return {
    pub: { allow: [`${Subjects.nodeRoot(nodeId)}.>`, ...kvReadSubjects(Buckets.peers), ...ownPolicy.pub, ...ownChunks.pub, ...ownPaths.pub, ...bundle.pub] },
    sub: { allow: [`${Subjects.inboxPrefix(nodeId)}.>`, ...ownPolicy.sub, ...ownPaths.sub, ...bundle.sub] },
  };
}
