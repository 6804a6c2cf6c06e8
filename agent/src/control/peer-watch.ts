/**
 * Follows the peers bucket without any JetStream consumer (an agent credential may create none):
 *
 * 1. a core subscription on `weft.v1.peers.>`, where the bucket's stream republishes every write
 *    once stored, with its stream sequence (`Nats-Sequence`) — started first, and flushed, so no
 *    write after it is missed;
 * 2. a snapshot: batched direct gets of the stream from sequence 1 in pages (`{seq, batch}`). The
 *    bucket keeps one message per key (history 1), so the stream holds exactly the current record
 *    or delete marker of every key; each page is read by the server in isolation from writes, and
 *    a key rewritten while we page moves to a higher sequence that a later page (or the live
 *    subscription) delivers. The snapshot is complete when a page says nothing is pending after
 *    it, or no message is left at the cursor.
 *
 * Every message, from the snapshot or live, is applied by one rule: per key, the highest sequence
 * wins (a delete marker is kept as a tombstone with its sequence, so an older record never
 * resurrects a deleted node). That makes "snapshot complete" exact whatever is written while it
 * runs: nothing is emitted before it, and after it the set is the bucket as of its end plus every
 * later write. The whole set is emitted once complete and after every change, with the highest
 * sequence seen as its revision. `restart()` starts over (after a reconnect, writes made while
 * disconnected were not seen); a subscription the server ends or a slow-consumer drop is reported
 * to `onEnded`, whose owner restarts the watch.
 *
 * Starting over reads the whole stream again, but does not parse it again: a snapshot message
 * whose key, sequence and stored time (`Nats-Time-Stamp`) equal those of a record the previous
 * view held is that same stored message, and its parsed record is reused. Sequence and time
 * together also tell a replaced stream (a restore) from the one seen before.
 *
 * `resume()` (after a reconnect) reads only what was written since: when the stream still holds,
 * at the view's highest sequence R, the very message the view took from there (same key and
 * stored time), it is the stream the view was built from (a restore from a later backup included)
 * and nothing the view had was lost — a key keeps its last message, a deletion its marker — so
 * the messages after R are exactly the changes, and the view goes on from them. Anything else
 * (that message rewritten or gone, a view that dropped messages: a subscription the server ended)
 * reads a fresh snapshot. After a NATS restart (thousands of agents resyncing at once) that reads
 * O(changes) per agent instead of the whole fleet.
 */
import { randomBytes } from "node:crypto";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { Buckets, PeerRecord, Subjects } from "@weft/protocol";
import { isDeletion } from "./key-watch.js";
import type { Logger } from "pino";

export interface PeerSet {
  peers: Map<string, PeerRecord>;
  revision: number;
}

export type PeerSetListener = (set: PeerSet) => void;

/** The stream behind the peers bucket. */
const PEERS_STREAM = `KV_${Buckets.peers}`;
const PEERS_SUBJECT_PREFIX = `$KV.${Buckets.peers}.`;
const UPDATES_PREFIX = Subjects.allPeerUpdates.slice(0, -1); // "weft.v1.peers."
/** Records per snapshot page. */
export const SNAPSHOT_PAGE = 512;
const PAGE_TIMEOUT_MS = 10_000;

/** One message of the peers stream: its key, sequence and what it says. */
export interface PeerMessage {
  key: string;
  seq: number;
  /** The record, or null for a delete/purge marker; undefined when the record is invalid. */
  record: PeerRecord | null | undefined;
  /** When the stream stored it (`Nats-Time-Stamp`), when the message says. */
  stamp?: string | undefined;
}

/** The merged view: per key, the message with the highest sequence (pure, no I/O). */
export class PeerView {
  readonly #latest = new Map<string, { seq: number; record: PeerRecord | null; stamp: string | undefined }>();
  #revision = 0;
  /** The message the revision came from. */
  #last: { key: string; seq: number; stamp: string | undefined } | undefined;

  /** A copy to go on from (resume). */
  clone(): PeerView {
    const c = new PeerView();
    for (const [k, v] of this.#latest) c.#latest.set(k, v);
    c.#revision = this.#revision;
    c.#last = this.#last;
    return c;
  }

  /** The applied message with the highest sequence: key, sequence and stored time. */
  get last(): { key: string; seq: number; stamp: string | undefined } | undefined {
    return this.#last;
  }

  /** Applies a message; false when it is not newer than what the key already has (or invalid). */
  apply(m: PeerMessage): boolean {
    if (m.record === undefined) return false;
    const cur = this.#latest.get(m.key);
    if (cur && cur.seq >= m.seq) return false;
    this.#latest.set(m.key, { seq: m.seq, record: m.record, stamp: m.stamp });
    if (m.seq > this.#revision) {
      this.#revision = m.seq;
      this.#last = { key: m.key, seq: m.seq, stamp: m.stamp };
    }
    return true;
  }

  get revision(): number {
    return this.#revision;
  }

  /** The record `key` has when it is the stored message (sequence and stored time) given; else undefined. */
  same(key: string, seq: number, stamp: string | undefined): PeerRecord | null | undefined {
    const cur = this.#latest.get(key);
    return cur && stamp !== undefined && cur.seq === seq && cur.stamp === stamp ? cur.record : undefined;
  }

  set(): PeerSet {
    const peers = new Map<string, PeerRecord>();
    for (const [key, v] of this.#latest) if (v.record) peers.set(key, v.record);
    return { peers, revision: this.#revision };
  }
}

export class PeerWatch {
  private sub: Subscription | undefined;
  private generation = 0;
  /** The view of the last start(): records a new snapshot finds unchanged are taken from it. */
  private known: PeerView | undefined;
  /** Whether `known` is complete and missed nothing since (a resume may go on from it). */
  private resumable = false;
  /** Stream messages the last start() or resume() read (tests, diagnostics). */
  lastRead = 0;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    /** The connection's inbox prefix (`_INBOX_<node id>`): snapshot replies go under it. */
    private readonly inboxPrefix: string,
    private readonly onSet: PeerSetListener,
    private readonly log: Logger,
    /** Called when the watch ends without stop() or restart(). */
    private readonly onEnded: () => void = () => undefined,
  ) {}

  /** Subscribes, reads a complete snapshot and emits it; then every change. Throws when the snapshot cannot be read (retry). */
  start(): Promise<void> {
    return this.sync(false);
  }

  /** After a reconnect: reads only what was written since the view's revision when that is sound (see above), else start(). */
  async resume(): Promise<void> {
    if (!this.stopped) await this.sync(true);
  }

  private async sync(resume: boolean): Promise<void> {
    const generation = ++this.generation;
    this.sub?.unsubscribe();
    const known = this.known;
    const base = resume && this.resumable ? known : undefined;
    this.resumable = false;
    let view = new PeerView();
    this.known = view;
    const buffered: PeerMessage[] = [];
    let complete = false;
    const sub = this.nc.subscribe(Subjects.allPeerUpdates, {
      callback: (err, msg) => {
        if (generation !== this.generation) return;
        if (err) {
          this.log.warn({ err }, "peer updates subscription failed; resyncing");
          this.end(generation);
          return;
        }
        const m = this.parse(msg, msg.subject.startsWith(UPDATES_PREFIX) ? msg.subject.slice(UPDATES_PREFIX.length) : undefined);
        if (!m) return;
        if (!complete) buffered.push(m);
        else if (view.apply(m)) this.onSet(view.set());
      },
    });
    this.sub = sub;
    void sub.closed.then((err) => {
      if (generation === this.generation && !this.stopped && err) {
        this.log.warn({ err }, "peer updates subscription closed by the server; resyncing");
        this.end(generation);
      }
    });
    try {
      await this.nc.flush(); // the server has the subscription before the snapshot is read
      let cursor = 1;
      const last = base?.last;
      if (base && last?.stamp !== undefined) {
        const at = await this.page(last.seq, base, 1);
        const there = at.messages[0];
        if (there?.seq === last.seq && there.key === last.key && there.stamp === last.stamp) {
          view = base.clone();
          this.known = view;
          cursor = last.seq + 1;
        }
      }
      this.lastRead = 0;
      await this.snapshot(view, known, () => generation !== this.generation, cursor);
    } catch (err) {
      if (generation === this.generation) sub.unsubscribe();
      throw err;
    }
    if (generation !== this.generation || this.stopped) return;
    for (const m of buffered.splice(0)) view.apply(m);
    complete = true;
    this.resumable = true;
    this.onSet(view.set());
  }

  /** Drop the current view and resync from a fresh snapshot. */
  async restart(): Promise<void> {
    if (!this.stopped) await this.start();
  }

  stop(): void {
    this.stopped = true;
    this.resumable = false;
    this.generation++;
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private end(generation: number): void {
    if (generation !== this.generation || this.stopped) return;
    this.resumable = false; // messages may have been dropped: the next start reads everything
    this.generation++;
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.onEnded();
  }

  /** Reads every message of the stream, page by page, into `view`. */
  private async snapshot(view: PeerView, known: PeerView | undefined, superseded: () => boolean, from = 1): Promise<void> {
    let cursor = from;
    for (;;) {
      if (superseded()) return;
      const page = await this.page(cursor, known);
      this.lastRead += page.messages.length;
      for (const m of page.messages) view.apply(m);
      if (page.done) return;
      cursor = page.lastSeq + 1;
    }
  }

  /** One batched direct get from `seq`: its messages, and whether nothing is pending after them. */
  private page(seq: number, known: PeerView | undefined, batch = SNAPSHOT_PAGE): Promise<{ messages: PeerMessage[]; lastSeq: number; done: boolean }> {
    const inbox = `${this.inboxPrefix}.peers.${randomBytes(8).toString("hex")}`;
    const messages: PeerMessage[] = [];
    let lastSeq = seq - 1;
    return new Promise((resolve, reject) => {
      const finish = (result: { done: boolean } | Error) => {
        clearTimeout(timer);
        sub.unsubscribe();
        if (result instanceof Error) reject(result);
        else resolve({ messages, lastSeq, done: result.done });
      };
      const timer = setTimeout(() => finish(new Error(`peers snapshot: no answer within ${PAGE_TIMEOUT_MS} ms`)), PAGE_TIMEOUT_MS);
      const sub = this.nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return finish(err);
          const h = msg.headers;
          if (h && h.code !== 0 && h.code !== 200) {
            // 204 EOB ends a page (Nats-Num-Pending: what is left after it); 404: nothing at or after seq.
            if (h.code === 204) return finish({ done: Number(h.get("Nats-Num-Pending") || "0") === 0 });
            if (h.code === 404) return finish({ done: true });
            return finish(new Error(`peers snapshot: server answered ${h.code} ${h.description}`));
          }
          const key = msg.headers?.get("Nats-Subject").slice(PEERS_SUBJECT_PREFIX.length);
          const m = this.parse(msg, key, known);
          if (m) {
            messages.push(m);
            lastSeq = Math.max(lastSeq, m.seq);
          }
        },
      });
      this.nc.publish(`$JS.API.DIRECT.GET.${PEERS_STREAM}`, JSON.stringify({ seq, batch }), { reply: inbox });
    });
  }

  /** A stream message (snapshot or republished) as a PeerMessage, or undefined when it has no sequence or key. */
  private parse(msg: Msg, key: string | undefined, known?: PeerView): PeerMessage | undefined {
    const seq = Number(msg.headers?.get("Nats-Sequence") ?? "");
    if (!key || !Number.isSafeInteger(seq) || seq <= 0) {
      this.log.warn({ subject: msg.subject }, "ignoring a peers message without a key or sequence");
      return undefined;
    }
    const stamp = msg.headers?.get("Nats-Time-Stamp") || undefined;
    const seen = known?.same(key, seq, stamp);
    if (seen !== undefined) return { key, seq, record: seen, stamp };
    if (isDeletion(msg.headers)) return { key, seq, record: null, stamp };
    let json: unknown;
    try {
      json = msg.json();
    } catch {
      json = undefined;
    }
    const parsed = PeerRecord.safeParse(json);
    if (parsed.success && parsed.data.nodeId === key) return { key, seq, record: parsed.data, stamp };
    this.log.warn({ peer: key, revision: seq }, "ignoring invalid peer record");
    return { key, seq, record: undefined };
  }
}
