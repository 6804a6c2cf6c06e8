/**
 * Watches ONE key of a bucket that an agent may read only that key of (its own key of
 * `weft-node-services`, `weft-node-paths`, `weft-node-policies`): nats-server cannot confine a
 * consumer to a key, so no kv.watch(). A core subscription on `$KV.<bucket>.<key>` says the key
 * changed; a direct get of the key's last message (`$JS.API.DIRECT.GET.KV_<bucket>.$KV.<bucket>.
 * <key>`) reads the value with its revision. Gets are coalesced (SingleFlight).
 *
 * The notification is the published message itself, delivered to core subscribers while the
 * stream is still storing it: a get sent at once may return the previous value (measured here:
 * 7 % of 3,000 puts on an idle server). So every notification is kept until a get reflects it
 * (same operation and payload), and the get is repeated with a short backoff until it does — or,
 * after CATCH_UP_MS, given up with a log line (a write the stream refused, e.g. a failed
 * compare-and-set, is announced but never stored). A slow safety-net read (`resyncEveryMs`) covers
 * a notification lost with the connection.
 *
 * `onRecord` is called with strictly increasing revisions only: the resolved record, or null when
 * the key does not exist or was deleted (the first successful read reports (null, 0) when there is
 * no key yet). A value that does not parse, or that `accept` refuses, is logged and never reported;
 * a record `resolve` cannot complete yet (undefined) is read again on the next change.
 */
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "@weft/protocol";
import { Backoff, SingleFlight, sleep } from "@weft/util";
import type { z } from "zod";

/** How long a notified write may take to become readable before the watch stops waiting for it. */
export const CATCH_UP_MS = 3_000;
/** Default interval of the safety-net read. */
export const DEFAULT_RESYNC_EVERY_MS = 120_000;

export interface OwnKeyWatchOptions<S extends z.ZodType, R = z.infer<S>> {
  bucket: string;
  key: string;
  schema: S;
  /** Extra check on a parsed record (e.g. it names this node); a string is the reason to refuse it. */
  accept?: (record: z.infer<S>) => string | undefined;
  /** Completes a parsed record (e.g. reads its chunks); undefined: not complete yet, wait for the next change. */
  resolve?: (record: z.infer<S>, at: { kv: KV; revision: number }) => Promise<R | undefined>;
  onRecord: (record: R | null, revision: number) => void;
  log: Logger;
  /** Safety-net read interval in ms (0: none). Default DEFAULT_RESYNC_EVERY_MS. */
  resyncEveryMs?: number;
}

/** A write heard on the key's subject and not yet read back. */
interface Notice {
  deleted: boolean;
  data: Uint8Array;
}

/** True when `entry` is the write `notice` announced (same operation and payload). */
export function reflects(entry: KvEntry | null, notice: Notice): boolean {
  if (notice.deleted) return !entry || entry.operation !== "PUT";
  return entry?.operation === "PUT" && Buffer.from(entry.value).equals(notice.data);
}

function noticeOf(msg: Msg): Notice {
  const op = msg.headers?.get("KV-Operation");
  return { deleted: op === "DEL" || op === "PURGE", data: msg.data.slice() };
}

export class OwnKeyWatch<S extends z.ZodType, R = z.infer<S>> {
  #sub: Subscription | undefined;
  #kv: KV | undefined;
  #revision = -1;
  #notice: Notice | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #reads = new SingleFlight(() => this.#readOnce());
  #stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: OwnKeyWatchOptions<S, R>,
  ) {}

  /** Subscribe first (so no change between the read and the subscription is missed), then read. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#kv ??= await new Kvm(this.nc).open(this.o.bucket, { allow_direct: true });
    if (!this.#sub || this.#sub.isClosed()) {
      this.#sub = this.nc.subscribe(`$KV.${this.o.bucket}.${this.o.key}`, {
        callback: (err, msg) => {
          if (err) return this.o.log.warn({ bucket: this.o.bucket, err }, "key subscription failed");
          this.#notice = noticeOf(msg);
          this.#schedule();
        },
      });
    }
    const every = this.o.resyncEveryMs ?? DEFAULT_RESYNC_EVERY_MS;
    if (every > 0 && !this.#timer) {
      this.#timer = setInterval(() => this.#schedule(), every);
      this.#timer.unref();
    }
    await this.#reads.run();
  }

  /** Read again (after a reconnect: changes made while disconnected were not seen). */
  async resync(): Promise<void> {
    if (this.#stopped) return;
    if (!this.#sub) return this.start();
    await this.#reads.run();
  }

  stop(): void {
    this.#stopped = true;
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The highest revision reported (0: no key yet; -1: nothing read yet). */
  get revision(): number {
    return this.#revision;
  }

  #schedule(): void {
    void this.#reads.run().catch((e: unknown) => this.o.log.warn({ bucket: this.o.bucket, err: e }, "cannot read the key; waiting for the next change or resync"));
  }

  /** The key's last message, read until it reflects the latest notification (or CATCH_UP_MS passed). */
  async #getCaughtUp(kv: KV): Promise<KvEntry | null> {
    const notice = this.#notice;
    const backoff = new Backoff({ initialMs: 5, maxMs: 250 });
    const deadline = Date.now() + CATCH_UP_MS;
    for (;;) {
      const entry = await kv.get(this.o.key);
      if (!notice || this.#stopped) return entry;
      if (reflects(entry, notice)) {
        if (this.#notice === notice) this.#notice = undefined;
        return entry;
      }
      if (this.#notice !== notice) return entry; // a newer write was announced: the queued read follows it
      if (Date.now() >= deadline) {
        this.#notice = undefined;
        this.o.log.info({ bucket: this.o.bucket, revision: entry?.revision ?? 0 }, "a write announced on the key never became readable (refused by the stream?); keeping what is stored");
        return entry;
      }
      await sleep(backoff.next());
    }
  }

  async #readOnce(): Promise<void> {
    const kv = this.#kv;
    if (!kv || this.#stopped) return;
    const entry = await this.#getCaughtUp(kv);
    if (this.#stopped) return;
    if (!entry) {
      if (this.#revision < 0) this.#report(null, 0);
      return;
    }
    if (entry.revision <= this.#revision) return;
    if (entry.operation !== "PUT") return this.#report(null, entry.revision);
    let json: unknown;
    try {
      json = entry.json();
    } catch {
      json = undefined;
    }
    const parsed = this.o.schema.safeParse(json);
    const problem = parsed.success ? this.o.accept?.(parsed.data) : parsed.error.issues[0]?.message;
    if (!parsed.success || problem !== undefined) {
      this.o.log.warn({ bucket: this.o.bucket, revision: entry.revision, problem }, "record refused (malformed or not for this agent); keeping the last applied one");
      return;
    }
    const record = this.o.resolve ? await this.o.resolve(parsed.data, { kv, revision: entry.revision }) : (parsed.data as R);
    if (record === undefined || this.#stopped) return;
    this.#report(record, entry.revision);
  }

  #report(record: R | null, revision: number): void {
    this.#revision = revision;
    try {
      this.o.onRecord(record, revision);
    } catch (err) {
      this.o.log.error({ bucket: this.o.bucket, revision, err }, "record listener threw");
    }
  }
}
