/**
 * A bucket kept in memory: its records read once (list), then every change followed (KV watch:
 * a snapshot, then updates), each value parsed with the bucket's schema. A record that does not
 * parse is logged and left out; a watch the server ends is started again a second later. Readers
 * see `entries` (shared: never change a record read from it); `onChange` and every `listen()`er
 * hear about each put or delete after the first read (its key), after `entries` has it.
 *
 * One mirror of a bucket per process serves all its readers: the server delivers every change
 * once per watch, and each watch parses and holds its own copy of every record.
 */
import type { KvWatchEntry } from "@nats-io/kv";
import type { NodeRecord } from "@weft/protocol";
import type { Logger } from "pino";
import type { z } from "zod";
import type { RecordStore } from "./kv.js";

type Stoppable = AsyncIterable<KvWatchEntry> & { stop(): void };

export interface BucketMirrorOptions {
  /** Key filter (`spiffe.>`); default every key. */
  key?: string;
  /** Names the bucket in logs. */
  bucket: string;
  log: Logger;
  onChange?: (key: string) => void;
}

export class BucketMirror<S extends z.ZodType> {
  readonly #entries = new Map<string, z.infer<S>>();
  readonly #listeners = new Set<(key: string) => void>();
  #watch: Stoppable | undefined;
  #stopped = false;

  private constructor(
    private readonly store: RecordStore<S>,
    private readonly schema: S,
    private readonly o: BucketMirrorOptions,
  ) {}

  /** Reads the bucket, then follows it. */
  static async start<S extends z.ZodType>(store: RecordStore<S>, schema: S, o: BucketMirrorOptions): Promise<BucketMirror<S>> {
    const m = new BucketMirror(store, schema, o);
    const all = await store.list(o.key, (key, err) => o.log.warn({ bucket: o.bucket, key, err }, "skipping unreadable record"));
    for (const r of all) m.#entries.set(r.key, r.value);
    await m.#follow();
    return m;
  }

  /** The current records by key. */
  get entries(): ReadonlyMap<string, z.infer<S>> {
    return this.#entries;
  }

  /** Calls `fn` with the key of every put or delete from now on; returns what stops it. */
  listen(fn: (key: string) => void): () => void {
    this.#listeners.add(fn);
    return () => void this.#listeners.delete(fn);
  }

  stop(): void {
    this.#stopped = true;
    this.#watch?.stop();
  }

  #tell(key: string): void {
    for (const fn of [this.o.onChange, ...this.#listeners]) {
      try {
        fn?.(key);
      } catch (err) {
        this.o.log.error({ bucket: this.o.bucket, key, err }, "a reader of the mirrored bucket failed on a change");
      }
    }
  }

  async #follow(): Promise<void> {
    const iter = (await this.store.kv.watch({ key: this.o.key ?? ">" })) as Stoppable;
    this.#watch = iter;
    void (async () => {
      try {
        for await (const e of iter) {
          if (e.operation === "PUT") {
            let json: unknown;
            try {
              json = e.json();
            } catch {
              json = undefined;
            }
            const parsed = this.schema.safeParse(json);
            if (!parsed.success) {
              this.o.log.warn({ bucket: this.o.bucket, key: e.key, err: parsed.error.issues[0]?.message }, "skipping unreadable record");
              continue;
            }
            this.#entries.set(e.key, parsed.data);
          } else {
            this.#entries.delete(e.key);
          }
          this.#tell(e.key);
        }
      } catch (err) {
        this.o.log.error({ bucket: this.o.bucket, err }, "watch failed");
      }
      if (!this.#stopped) {
        this.o.log.warn({ bucket: this.o.bucket }, "watch ended; restarting in 1 s");
        setTimeout(() => void (this.#stopped ? undefined : this.#follow().catch((err: unknown) => this.o.log.error({ bucket: this.o.bucket, err }, "cannot restart watch"))), 1000);
      }
    })();
  }
}

/** The controller's one mirror of the node records (weft-nodes), shared by every reader of the whole fleet. */
export type NodeMirror = BucketMirror<typeof NodeRecord>;
