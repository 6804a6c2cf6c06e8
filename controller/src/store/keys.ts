/**
 * The live keys (or entries) of a KV bucket, listed with a pull consumer that always ends.
 *
 * `kv.keys()` of @nats-io/kv reads an ordered push consumer and stops when a message says nothing
 * is pending, or at an idle heartbeat. Against nats-server 2.9 with keys being created and deleted
 * at the same time, that sometimes never happens: about 1 listing in 600 hung for good in a
 * side-by-side run (two writers creating and deleting 20 keys), and an enrollment that listed the
 * claimed prefixes hung with it. Here the listing is a bounded loop of pull requests: each asks for
 * what the consumer reports pending and returns by itself when the request expires, and a request
 * that brings nothing ends the listing, with the server's own count asked once more first.
 * Listing whole entries the same way reads a bucket in one pass instead of a get per key.
 *
 * Creating that consumer needs the cluster's JetStream meta leader. When a NATS server dies holding
 * it, the others take several seconds to elect a new one (4–9 s: nats-server's election timeout;
 * 6.8 s in one lab run), and until then a consumer request is refused after a wait or not answered
 * (a listing in the lab waited out the whole election and then its retry budget); the stream's
 * replicas still answer direct gets. So a listing whose consumer is not created within
 * CONSUMER_WAIT_MS, or is refused as unavailable, reads the stream by batched direct gets instead
 * (`latestByDirectGets`), as any replica has it: every message of the matching keys, history
 * included, in sequence order. A replica may be a few milliseconds behind the stream's leader, as
 * it may for any `kv.get` (the buckets allow direct gets).
 */
import { AckPolicy, DeliverPolicy, JetStreamError, type ConsumerInfo, type JsMsg, type StoredMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
// Why the library's internal entry point: the public KV interface has neither the bucket's stream
// name nor its key codec (fullKeyName, encodeKey, decodeKey, prefixLen) nor its JetStream clients
// (js, jsm), and the listing described above needs all of them to read the stream with its own
// consumer.
// kv-internal.test.ts fails when the class or any member used here changes; re-check it on every
// @nats-io/kv upgrade.
// eslint-disable-next-line @typescript-eslint/no-restricted-imports -- see the comment above
import { Bucket } from "@nats-io/kv/internal";
import type { KV } from "@nats-io/kv";
import { classifyStoreError } from "./failures.js";

/** How long one pull request waits for messages the consumer said were pending. */
const FETCH_EXPIRES_MS = 2_000;
/** Largest pull request. */
const FETCH_MAX = 10_000;
/** The consumer removes itself when a listing is abandoned (process died mid-listing, or gave up waiting for it). */
const INACTIVE_THRESHOLD_MS = 60_000;
/** How long a listing waits for its consumer before reading the stream by direct gets. */
export const CONSUMER_WAIT_MS = 3_000;
/** Messages per batched direct get. */
const DIRECT_PAGE = 1_000;

export interface ListingOptions {
  /** Told when the listing was read from the stream's replicas by direct gets (no consumer could be made). */
  onReplicas?: () => void;
}

/**
 * Keys of `kv` matching `filter` (a KV key pattern, `>` for all) whose last operation is a put, each
 * once; writes made while listing may or may not be reflected.
 */
export async function liveKeys(kv: KV, filter = ">", opts: ListingOptions = {}): Promise<string[]> {
  if (!(kv instanceof Bucket)) {
    // Another KV implementation: trust its own listing.
    const out: string[] = [];
    for await (const k of await kv.keys(filter)) out.push(k);
    return out;
  }
  return [...(await scanLatest(kv, filter, true, opts)).keys()];
}

/** A key's current revision and when it was stored, without its value. */
export interface LiveStamp {
  key: string;
  revision: number;
  created: Date;
}

/** Every live key matching `filter` with its revision and store time (values are not read). */
export async function liveStamps(kv: KV, filter = ">", opts: ListingOptions = {}): Promise<LiveStamp[]> {
  const entries = kv instanceof Bucket ? (await scanLatest(kv, filter, true, opts)).values() : await liveEntries(kv, filter);
  return [...entries].map(({ key, revision, created }) => ({ key, revision, created }));
}

/** A key's current value and revision. */
export interface LiveEntry {
  key: string;
  value: Uint8Array;
  revision: number;
  /** When the stream stored this value. */
  created: Date;
}

/**
 * The current entries of `kv` matching `filter`, read in one pass over the stream (no get per key);
 * like `liveKeys`, writes made while listing may or may not be reflected.
 */
export async function liveEntries(kv: KV, filter = ">", opts: ListingOptions = {}): Promise<LiveEntry[]> {
  if (!(kv instanceof Bucket)) {
    const out: LiveEntry[] = [];
    for await (const key of await kv.keys(filter)) {
      const e = await kv.get(key);
      if (e && e.operation === "PUT") out.push({ key, value: e.value, revision: e.revision, created: e.created });
    }
    return out;
  }
  return [...(await scanLatest(kv, filter, false, opts)).values()];
}

/** Keeps the last operation of each key: a put's entry, or no entry after a delete or purge. */
class Latest {
  readonly entries = new Map<string, LiveEntry>();
  constructor(private readonly kv: Bucket) {}

  take(subject: string, op: string | undefined, value: Uint8Array, revision: number, created: Date): void {
    const key = this.kv.decodeKey(subject.substring(this.kv.prefixLen));
    if (op === "DEL" || op === "PURGE") this.entries.delete(key);
    else this.entries.set(key, { key, value, revision, created });
  }
}

/** The last put of every key matching `filter`, by key: from an ephemeral pull consumer, else by direct gets. */
async function scanLatest(kv: Bucket, filter: string, headersOnly: boolean, opts: ListingOptions): Promise<Map<string, LiveEntry>> {
  const subject = kv.fullKeyName(kv.encodeKey(filter));
  const adding = kv.jsm.consumers.add(kv.stream, {
    deliver_policy: DeliverPolicy.LastPerSubject,
    ack_policy: AckPolicy.None,
    filter_subject: subject,
    headers_only: headersOnly,
    mem_storage: true,
    num_replicas: 1, // a listing's consumer needs no raft group of its own on a clustered (R3) stream
    inactive_threshold: nanos(INACTIVE_THRESHOLD_MS),
  });
  let created: ConsumerInfo;
  try {
    created = await withinMs(adding, CONSUMER_WAIT_MS, `no consumer for the listing within ${CONSUMER_WAIT_MS} ms (timeout)`);
  } catch (err) {
    // A consumer made after all is not left to its inactivity threshold: under load that is when listings pile up.
    adding.then((late) => kv.jsm.consumers.delete(kv.stream, late.name)).catch(() => undefined);
    if (classifyStoreError(err) === "permanent") throw err;
    const entries = await latestByDirectGets(kv, subject);
    opts.onReplicas?.();
    return entries;
  }
  try {
    const consumer = await kv.js.consumers.get(kv.stream, created.name);
    // Writes made while listing are delivered too, after the key's earlier state: the last one wins.
    const latest = new Latest(kv);
    const take = (m: JsMsg) => latest.take(m.subject, m.headers?.get("KV-Operation"), m.data, m.seq, m.time);
    let pending = created.num_pending;
    while (pending > 0) {
      let got = 0;
      for await (const m of await consumer.fetch({ max_messages: Math.min(pending, FETCH_MAX), expires: FETCH_EXPIRES_MS })) {
        got++;
        take(m);
        pending = m.info.pending;
      }
      // Nothing came although something was said to be pending: ask the consumer itself once; if it
      // still counts messages it does not deliver (superseded while we listed), the listing is whole.
      if (got === 0) {
        const now = (await consumer.info()).num_pending;
        if (now === pending || now === 0) break;
        pending = now;
      }
    }
    return latest.entries;
  } finally {
    await kv.jsm.consumers.delete(kv.stream, created.name).catch(() => undefined);
  }
}

/**
 * The last put of every key whose subject matches `subject`, read by batched direct gets from any
 * replica of the bucket's stream: every matching message in sequence order, a page at a time.
 */
export async function latestByDirectGets(kv: Bucket, subject: string): Promise<Map<string, LiveEntry>> {
  const latest = new Latest(kv);
  let seq = 1;
  for (;;) {
    let got = 0;
    let pending = 0;
    try {
      for await (const m of await kv.jsm.direct.getBatch(kv.stream, { seq, batch: DIRECT_PAGE, next_by_subj: subject })) {
        got++;
        latest.take(m.subject, operationOf(m), m.data, m.seq, m.time);
        seq = m.seq + 1;
        pending = m.pending;
      }
    } catch (err) {
      if (!noMessageFrom(err)) throw err;
    }
    if (got === 0 || pending <= 0) return latest.entries;
  }
}

/** The server's 404 to a direct get: no matching message at or after the sequence asked for. */
function noMessageFrom(err: unknown): boolean {
  return err instanceof JetStreamError && "code" in err && err.code === 404;
}

function operationOf(m: StoredMsg): string | undefined {
  return m.header.get("KV-Operation") || undefined;
}

/** `p`, or a timeout error after `ms` (the request itself is not cancelled). */
function withinMs<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
