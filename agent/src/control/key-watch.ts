/**
 * Watches ONE key of a bucket that an agent may read only that key of (its own key of
 * `weft-node-services`, `weft-node-paths`, `weft-node-policies`; the trust bundle): nats-server
 * cannot confine a consumer to a key, so no kv.watch(). The bucket's stream republishes every
 * stored write of the key on `weft.v1.kv.<bucket>.<key>` with its revision (`Nats-Sequence`;
 * republishOf in controller/src/nats/connect.ts), so a core subscription there follows every
 * change with nothing to read back. A direct get of the key's last message
 * (`$JS.API.DIRECT.GET.KV_<bucket>.$KV.<bucket>.<key>`) reads the key at start, on resync() (after
 * a reconnect: writes made while disconnected were not heard) and as a slow safety net
 * (`resyncEveryMs`).
 *
 * Writes heard and reads are applied one at a time (SingleFlight), the newest heard write first;
 * `onRecord` is called with strictly increasing revisions only: the resolved record, or null when
 * the key does not exist or was deleted (the first successful read reports (null, 0) when there is
 * no key yet). A value that does not parse, or that `accept` refuses, is logged and never reported;
 * a record `resolve` cannot complete yet (undefined) is read again on the next change.
 *
 * Why the republish and not the write's own subject (`$KV.<bucket>.<key>`, which releases before
 * it followed): that message reaches subscribers while the stream is still storing it, carries no
 * revision and may be refused (a failed compare-and-set), so each one cost a direct get — repeated
 * until it reflected the write — per agent and per change: at 10,000 nodes a policy change was
 * 10,000 writes and at least 10,000 gets.
 */
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { Msg, MsgHdrs, NatsConnection, Subscription } from "@nats-io/transport-node";
import { Subjects, type Logger } from "@weft/protocol";
import { SingleFlight } from "@weft/util";
import type { z } from "zod";

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

/** A stored write of the key (heard on the republish subject, or read): its revision, and its value unless it deleted the key. */
interface KeyWrite {
  revision: number;
  deleted: boolean;
  /** The value parsed as JSON; undefined when it is not JSON. */
  json(): unknown;
}

function jsonOf(source: { json<T>(): T }): unknown {
  try {
    return source.json();
  } catch {
    return undefined;
  }
}

/** Whether a message of a KV stream (republished or read) is a delete or purge marker. */
export function isDeletion(headers: MsgHdrs | undefined): boolean {
  const op = headers?.get("KV-Operation");
  return op === "DEL" || op === "PURGE";
}

function writeOfEntry(entry: KvEntry): KeyWrite {
  return { revision: entry.revision, deleted: entry.operation !== "PUT", json: () => jsonOf(entry) };
}

export class OwnKeyWatch<S extends z.ZodType, R = z.infer<S>> {
  #sub: Subscription | undefined;
  #kv: KV | undefined;
  #revision = -1;
  /** The newest write heard on the republish subject and not applied yet. */
  #heard: KeyWrite | undefined;
  /** A read of the key is due (start, resync, safety net). */
  #readDue = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #work = new SingleFlight(() => this.#drain());
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
      this.#sub = this.nc.subscribe(Subjects.keyUpdates(this.o.bucket, this.o.key), {
        callback: (err, msg) => {
          if (err) return this.o.log.warn({ bucket: this.o.bucket, err }, "key subscription failed");
          this.#hear(msg);
        },
      });
    }
    const every = this.o.resyncEveryMs ?? DEFAULT_RESYNC_EVERY_MS;
    if (every > 0 && !this.#timer) {
      this.#timer = setInterval(() => this.#read(), every);
      this.#timer.unref();
    }
    this.#readDue = true;
    await this.#work.run();
  }

  /** Read again (after a reconnect: changes made while disconnected were not heard). */
  async resync(): Promise<void> {
    if (this.#stopped) return;
    if (!this.#sub) return this.start();
    this.#readDue = true;
    await this.#work.run();
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

  /** A write republished by the stream: kept (the newest only) and applied in turn. */
  #hear(msg: Msg): void {
    const revision = Number(msg.headers?.get("Nats-Sequence") ?? "");
    const subject = msg.headers?.get("Nats-Subject");
    if (!Number.isSafeInteger(revision) || revision <= 0 || subject !== `$KV.${this.o.bucket}.${this.o.key}`) {
      this.o.log.warn({ bucket: this.o.bucket, subject: msg.subject }, "ignoring a key update without the stream's revision or subject");
      return;
    }
    if (this.#heard && this.#heard.revision >= revision) return;
    const deleted = isDeletion(msg.headers);
    // Parsed now: the message's bytes belong to the connection's read buffer.
    const value = deleted ? undefined : jsonOf(msg);
    this.#heard = { revision, deleted, json: () => value };
    this.#schedule();
  }

  #read(): void {
    this.#readDue = true;
    this.#schedule();
  }

  #schedule(): void {
    void this.#work.run().catch((e: unknown) => this.o.log.warn({ bucket: this.o.bucket, err: e }, "cannot read the key; waiting for the next change or resync"));
  }

  /** Applies what is pending: the newest write heard, then a due read; until nothing is left. */
  async #drain(): Promise<void> {
    for (;;) {
      const kv = this.#kv;
      if (!kv || this.#stopped) return;
      const heard = this.#heard;
      if (heard) {
        this.#heard = undefined;
        await this.#apply(kv, heard);
        continue;
      }
      if (!this.#readDue) return;
      // Cleared before the get, so a read asked for meanwhile (a reconnect during it) runs after it.
      this.#readDue = false;
      let entry: KvEntry | null;
      try {
        entry = await kv.get(this.o.key);
      } catch (err) {
        this.#readDue = true; // still due: the next change, resync or safety net reads again
        throw err;
      }
      if (!entry) {
        if (this.#revision < 0 && !this.#stopped) this.#report(null, 0);
        continue;
      }
      await this.#apply(kv, writeOfEntry(entry));
    }
  }

  async #apply(kv: KV, write: KeyWrite): Promise<void> {
    if (this.#stopped || write.revision <= this.#revision) return;
    if (write.deleted) return this.#report(null, write.revision);
    const parsed = this.o.schema.safeParse(write.json());
    const problem = parsed.success ? this.o.accept?.(parsed.data) : parsed.error.issues[0]?.message;
    if (!parsed.success || problem !== undefined) {
      this.o.log.warn({ bucket: this.o.bucket, revision: write.revision, problem }, "record refused (malformed or not for this agent); keeping the last applied one");
      return;
    }
    const record = this.o.resolve ? await this.o.resolve(parsed.data, { kv, revision: write.revision }) : (parsed.data as R);
    if (record === undefined || this.#stopped || write.revision <= this.#revision) return;
    this.#report(record, write.revision);
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
