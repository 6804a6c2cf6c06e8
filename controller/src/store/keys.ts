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
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
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

/** How long one pull request waits for messages the consumer said were pending. */
const FETCH_EXPIRES_MS = 2_000;
/** Largest pull request. */
const FETCH_MAX = 10_000;
/** The consumer removes itself when a listing is abandoned (process died mid-listing). */
const INACTIVE_THRESHOLD_MS = 60_000;

/**
 * Keys of `kv` matching `filter` (a KV key pattern, `>` for all) whose last operation is a put, each
 * once; writes made while listing may or may not be reflected.
 */
export async function liveKeys(kv: KV, filter = ">"): Promise<string[]> {
  if (!(kv instanceof Bucket)) {
    // Another KV implementation: trust its own listing.
    const out: string[] = [];
    for await (const k of await kv.keys(filter)) out.push(k);
    return out;
  }
  return [...(await scanLatest(kv, filter, true)).keys()];
}

/** A key's current revision and when it was stored, without its value. */
export interface LiveStamp {
  key: string;
  revision: number;
  created: Date;
}

/** Every live key matching `filter` with its revision and store time (values are not read). */
export async function liveStamps(kv: KV, filter = ">"): Promise<LiveStamp[]> {
  const entries = kv instanceof Bucket ? (await scanLatest(kv, filter, true)).values() : await liveEntries(kv, filter);
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
export async function liveEntries(kv: KV, filter = ">"): Promise<LiveEntry[]> {
  if (!(kv instanceof Bucket)) {
    const out: LiveEntry[] = [];
    for await (const key of await kv.keys(filter)) {
      const e = await kv.get(key);
      if (e && e.operation === "PUT") out.push({ key, value: e.value, revision: e.revision, created: e.created });
    }
    return out;
  }
  return [...(await scanLatest(kv, filter, false)).values()];
}

/** The last put of every key matching `filter`, by key, from an ephemeral pull consumer. */
async function scanLatest(kv: Bucket, filter: string, headersOnly: boolean): Promise<Map<string, LiveEntry>> {
  const created = await kv.jsm.consumers.add(kv.stream, {
    deliver_policy: DeliverPolicy.LastPerSubject,
    ack_policy: AckPolicy.None,
    filter_subject: kv.fullKeyName(kv.encodeKey(filter)),
    headers_only: headersOnly,
    mem_storage: true,
    num_replicas: 1, // a listing's consumer needs no raft group of its own on a clustered (R3) stream
    inactive_threshold: nanos(INACTIVE_THRESHOLD_MS),
  });
  try {
    const consumer = await kv.js.consumers.get(kv.stream, created.name);
    // Writes made while listing are delivered too, after the key's earlier state: the last one wins.
    const entries = new Map<string, LiveEntry>();
    const take = (m: JsMsg) => {
      const key = kv.decodeKey(m.subject.substring(kv.prefixLen));
      const op = m.headers?.get("KV-Operation");
      if (op === "DEL" || op === "PURGE") entries.delete(key);
      else entries.set(key, { key, value: m.data, revision: m.seq, created: m.time });
    };
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
    return entries;
  } finally {
    await kv.jsm.consumers.delete(kv.stream, created.name).catch(() => undefined);
  }
}
