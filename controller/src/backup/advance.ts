/**
 * After a restore, every restored bucket's revisions are moved REVISION_GAP past the backup's last:
 * the stream's messages are read in order, the stream is purged up to `lastSeq + REVISION_GAP`
 * (JetStream then starts the stream at that sequence), and the messages are written again in the
 * same order, each with its own headers (delete and purge markers included).
 *
 * Why: agents apply only records newer than the revision they hold (agent/src/control/key-watch.ts,
 * reconcile/policy.ts). The store went on after the backup was taken, so an agent may hold a
 * revision the restored bucket never reached — its policy, say, from a change made after the
 * backup. At the backup's revisions it would ignore the restored record and every change after
 * the restore until the revisions caught up; moved past anything written since the backup, the
 * restored records are newer than what any agent holds, and the agents converge on them.
 */
import { jetstream, type JsMsg } from "@nats-io/jetstream";
import { headers as newHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { retry, sleep } from "@weft/util";
import type { Logger } from "pino";
import { BackupError } from "./errors.js";

/**
 * How far past the backup's last revision a restored bucket starts: more writes than any store
 * makes between a backup and its restore (4.3 billion), and 2^21 restores before revisions leave
 * the integers JavaScript holds exactly.
 */
export const REVISION_GAP = 2 ** 32;
/** Publishes in flight at once while writing the messages back (one connection keeps their order). */
const WINDOW = 256;
/** One read of the stream gives up when no message came for this long (and is tried again). */
const READ_IDLE_MS = 3_000;
/** Reads of a stream just restored: a clustered one may still be electing its leader (seen at R3 on a loaded machine). */
const READ_ATTEMPTS = 8;
/** Attempts of the purge, and windows in a row that store nothing, before the move gives up. */
const WRITE_ATTEMPTS = 6;

/** A stored message to write again. */
export interface HeldMessage {
  subject: string;
  data: Uint8Array;
  headers: [string, string[]][];
}

/**
 * The headers a stored message is written again with: all but the publish-time expectations and
 * the deduplication id (`Nats-Expected-*`: a compare-and-set that held then does not hold at the
 * new sequence; `Nats-Msg-Id`: a duplicate within the window is dropped).
 */
export function keptHeaders(h: MsgHdrs | undefined): [string, string[]][] {
  if (!h) return [];
  const out: [string, string[]][] = [];
  for (const k of h.keys()) {
    if (/^nats-expected-/i.test(k) || /^nats-msg-id$/i.test(k)) continue;
    out.push([k, h.values(k)]);
  }
  return out;
}

/** Where the stream starts after the move, and the sequence of its last message (first - 1 when empty). */
export function advancedRange(lastSeq: number, messages: number, gap = REVISION_GAP): { first: number; last: number } {
  const first = lastSeq + gap;
  return { first, last: first + messages - 1 };
}

/** Reads every message of `stream` in order with an ordered consumer. */
async function readAll(nc: NatsConnection, stream: string, messages: number): Promise<HeldMessage[]> {
  const held: HeldMessage[] = [];
  if (messages === 0) return held;
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream);
  const iter = await consumer.consume({ max_messages: Math.min(messages, 1024) });
  const idle = setTimeout(() => iter.stop(), READ_IDLE_MS);
  try {
    for await (const m of iter as AsyncIterable<JsMsg>) {
      idle.refresh();
      held.push({ subject: m.subject, data: m.data.slice(), headers: keptHeaders(m.headers) });
      if (m.info.pending === 0) break;
    }
  } finally {
    clearTimeout(idle);
    iter.stop();
  }
  if (held.length !== messages) throw new BackupError(`moving the revisions of ${stream}: read ${held.length} of its ${messages} messages`);
  return held;
}

/**
 * Moves `stream`'s revisions `gap` (default REVISION_GAP) past `state.last_seq` (its last sequence,
 * as restored), keeping every message and their order. Returns the stream's state after.
 */
export async function advanceRevisions(
  nc: NatsConnection,
  stream: string,
  state: { messages: number; last_seq: number },
  o: { gap?: number; log?: Logger } = {},
): Promise<{ messages: number; first_seq: number; last_seq: number }> {
  const what = `moving the revisions of ${stream}`;
  const gap = o.gap ?? REVISION_GAP;
  const held = await retry(() => readAll(nc, stream, state.messages), {
    initialMs: 250,
    maxMs: 2000,
    maxAttempts: READ_ATTEMPTS,
    onRetry: (err, retryInMs) => o.log?.warn({ stream, err: err instanceof Error ? err.message : String(err), retryInMs }, "reading a restored bucket again"),
  });
  const js = jetstream(nc);
  const jsm = await js.jetstreamManager();
  const want = advancedRange(state.last_seq, state.messages, gap);
  const again = <T>(step: string, fn: () => Promise<T>) =>
    retry(fn, {
      initialMs: 250,
      maxMs: 2000,
      maxAttempts: WRITE_ATTEMPTS,
      onRetry: (err, retryInMs) => o.log?.warn({ stream, step, err: err instanceof Error ? err.message : String(err), retryInMs }, "moving a restored bucket's revisions: trying again"),
    });
  try {
    // Idempotent: a purge repeated after a lost answer leaves the same empty stream at want.first.
    await again("purge", () => jsm.streams.purge(stream, { seq: want.first }));
    // Written in windows, each message expecting the stream's last sequence to be the one before
    // it: after a failure (a timeout, a leader change) whatever landed is kept, in order, and the
    // writes resume from the stream's last sequence.
    let next = 0;
    let stalled = 0;
    while (next < held.length) {
      const from = next;
      const results = await Promise.allSettled(
        held.slice(from, from + WINDOW).map((m, j) => {
          const h = newHeaders();
          for (const [k, values] of m.headers) for (const v of values) h.append(k, v);
          return js.publish(m.subject, m.data, { expect: { lastSequence: want.first + from + j - 1 }, ...(m.headers.length > 0 ? { headers: h } : {}) });
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (!failed) {
        next = from + results.length;
        continue;
      }
      next = (await again("read the last sequence", () => jsm.streams.info(stream))).state.last_seq - want.first + 1;
      if (next > from) stalled = 0;
      else if (++stalled >= WRITE_ATTEMPTS) throw failed.reason;
      o.log?.warn({ stream, written: next, of: held.length, err: failed.reason instanceof Error ? failed.reason.message : String(failed.reason) }, "moving a restored bucket's revisions: resuming the writes");
      await sleep(250 * 2 ** Math.min(stalled, 3));
    }
  } catch (cause) {
    throw new BackupError(`${what}: ${cause instanceof Error ? cause.message : String(cause)}; restore again with --force`, { cause });
  }
  const after = (await jsm.streams.info(stream)).state;
  if (after.messages !== state.messages || (state.messages > 0 && (after.first_seq !== want.first || after.last_seq !== want.last))) {
    throw new BackupError(`${what}: the store holds ${after.messages} messages at ${after.first_seq}..${after.last_seq}, want ${state.messages} at ${want.first}..${want.last}; restore again with --force`);
  }
  return { messages: after.messages, first_seq: after.first_seq, last_seq: after.last_seq };
}
