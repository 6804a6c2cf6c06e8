/**
 * Typed JSON records in JetStream KV buckets, with compare-and-set helpers.
 * Every read returns the revision so writers can update transactionally, and
 * `change(key, fn)` is the one read-modify-write loop every writer uses.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { Backoff, sleep } from "@weft/util";
import type { z } from "zod";
import { StoreUnavailableError } from "../errors.js";
import { classifyStoreError, explainStoreError, type Failure } from "./failures.js";
import { liveEntries, liveKeys, liveStamps, type ListingOptions, type LiveStamp } from "./keys.js";

export interface Versioned<T> {
  value: T;
  revision: number;
}

/** A record as listed: with its key. */
export interface Keyed<T> extends Versioned<T> {
  key: string;
}

/** True when a KV create/update lost a compare-and-set race (or the key exists). */
export function isRevisionConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/**
 * The give-up rule of `RecordStore.change`: a change that keeps losing compare-and-set races is
 * retried, after a short random pause that grows with each loss (up to ~50 ms, so a burst of
 * writers spreads out), until this long has passed since its first attempt; then it fails with
 * `LostRacesError`. A deadline rather than a count: under a burst (every enrollment with one
 * join key updates its one record) most attempts lose, and a fixed count a large burst exhausts.
 */
export const RACE_DEADLINE_MS = 10_000;

/** `change` kept losing races until its deadline: the record is under heavy concurrent use. Retryable. */
export class LostRacesError extends StoreUnavailableError {}

/** What `change` did: created the record, updated it, left it as it was, or found none and made none. */
export type ChangeOutcome = "created" | "updated" | "unchanged" | "absent";

export interface Changed<T> {
  outcome: ChangeOutcome;
  /** The record as it now is (undefined when absent). */
  value: T | undefined;
  /** Its revision (undefined when absent). */
  revision: number | undefined;
}

export interface ChangeOptions<T> {
  /**
   * The record as the caller just read it (null: just read as absent), so the first attempt needs
   * no read of its own; later attempts read afresh.
   */
  known?: Versioned<T> | null;
}

/** Told of every KV operation a store makes and how it ended (metrics). */
export type KvObserver = (bucket: string, op: string, result: "ok" | "conflict" | "error") => void;

export interface RecordStoreOptions {
  /** Overrides RACE_DEADLINE_MS (tests). */
  raceDeadlineMs?: number;
  observe?: KvObserver;
  /** Overrides STORE_RETRY_MS (tests). */
  storeRetryMs?: number;
}

/**
 * How long a store call retries while JetStream cannot answer (a NATS cluster electing a new
 * stream leader after a server died takes a few seconds). Every call retries such failures; a
 * compare-and-set write whose earlier attempt may have been stored (a timeout: the
 * acknowledgement may be what was lost) and whose retry then loses the race reads the key, and
 * counts as done when the stored value is exactly the one it wrote. Past this, the call fails with StoreUnavailableError naming the cause:
 * without a quorum (fewer than 2 of 3 servers) writes are refused after about this long.
 */
export const STORE_RETRY_MS = 10_000;

/** No new attempt starts with less than this left before the deadline (one JetStream request's timeout). */
const STORE_REQUEST_BUDGET_MS = 2000;

const decoder = new TextDecoder();

export class RecordStore<S extends z.ZodType> {
  private readonly raceDeadlineMs: number;
  private readonly observe: KvObserver;

  constructor(
    readonly kv: KV,
    private readonly schema: S,
    private readonly bucket: string,
    opts: RecordStoreOptions = {},
  ) {
    this.raceDeadlineMs = opts.raceDeadlineMs ?? RACE_DEADLINE_MS;
    this.observe = opts.observe ?? (() => {});
    this.storeRetryMs = opts.storeRetryMs ?? STORE_RETRY_MS;
  }

  private readonly storeRetryMs: number;

  /** Runs `fn`, retrying the failures `retryOn` allows until STORE_RETRY_MS; then StoreUnavailableError naming the cause. */
  private async attempt<T>(op: string, fn: () => Promise<T>, retryOn: readonly Failure[], passThrough: (err: unknown) => boolean = () => false): Promise<T> {
    const deadline = Date.now() + this.storeRetryMs;
    const pause = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.3 });
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (passThrough(err)) throw err;
        if (!retryOn.includes(classifyStoreError(err)) || Date.now() + STORE_REQUEST_BUDGET_MS >= deadline) {
          throw new StoreUnavailableError(`${this.bucket}: ${op} failed: ${explainStoreError(err)}`, { cause: err });
        }
        await sleep(Math.min(pause.next(), Math.max(0, deadline - Date.now())));
      }
    }
  }

  /**
   * Read-modify-write one record with compare-and-set. `fn` gets the record as stored (undefined
   * when there is none) and returns the next value, or undefined to leave it as it is; a value for
   * an absent key creates it. When another writer wrote in between, `fn` runs again on what that
   * writer stored, so `fn` must be a function of its argument (it may run several times; it may be
   * async; it may throw to abort, and the error reaches the caller). Gives up by the rule of
   * RACE_DEADLINE_MS with LostRacesError.
   */
  async change(key: string, fn: (current: z.infer<S> | undefined) => z.infer<S> | undefined | Promise<z.infer<S> | undefined>, opts: ChangeOptions<z.infer<S>> = {}): Promise<Changed<z.infer<S>>> {
    const deadline = Date.now() + this.raceDeadlineMs;
    const pause = new Backoff({ initialMs: 2, maxMs: 25, jitter: 1 });
    for (let attempt = 0; ; attempt++) {
      const got = attempt === 0 && opts.known !== undefined ? (opts.known ?? undefined) : await this.get(key);
      const next = await fn(got?.value);
      if (next === undefined) return got ? { outcome: "unchanged", value: got.value, revision: got.revision } : { outcome: "absent", value: undefined, revision: undefined };
      const revision = got ? await this.update(key, next, got.revision) : await this.create(key, next);
      if (revision !== false) return { outcome: got ? "updated" : "created", value: next, revision };
      if (Date.now() >= deadline) {
        throw new LostRacesError(`${this.bucket}: ${key} kept changing under concurrent writers for ${this.raceDeadlineMs} ms (${attempt + 1} attempts); retry`);
      }
      await sleep(pause.next());
    }
  }

  async get(key: string): Promise<Versioned<z.infer<S>> | undefined> {
    const entry = await this.wrap("get", key, () => this.kv.get(key));
    if (!entry || entry.operation !== "PUT") return undefined;
    return { value: this.schema.parse(entry.json()), revision: entry.revision };
  }

  /** Create; resolves false when the key already exists. */
  async create(key: string, value: z.infer<S>): Promise<number | false> {
    const body = JSON.stringify(this.schema.parse(value));
    return this.casWrite(`create ${key}`, key, body, () => this.kv.create(key, body));
  }

  /** Update at `revision`; resolves false when someone else wrote first. */
  async update(key: string, value: z.infer<S>, revision: number): Promise<number | false> {
    const body = JSON.stringify(this.schema.parse(value));
    return this.casWrite(`update ${key}`, key, body, () => this.kv.update(key, body, revision));
  }

  /** A compare-and-set write with retries; a lost race after an attempt that may have been stored is checked against the stored value. */
  private async casWrite(op: string, key: string, body: string, write: () => Promise<number>): Promise<number | false> {
    let maybeStored = false;
    const kind = op.split(" ")[0]!;
    try {
      const revision = await this.attempt(
        op,
        async () => {
          try {
            return await write();
          } catch (err) {
            if (classifyStoreError(err) === "ambiguous") maybeStored = true;
            throw err;
          }
        },
        ["not-processed", "ambiguous"],
        isRevisionConflict,
      );
      this.observe(this.bucket, kind, "ok");
      return revision;
    } catch (err) {
      if (!isRevisionConflict(err)) {
        this.observe(this.bucket, kind, "error");
        throw err;
      }
      if (maybeStored) {
        const now = await this.wrap("get", key, () => this.kv.get(key));
        if (now && now.operation === "PUT" && decoder.decode(now.value) === body) {
          this.observe(this.bucket, kind, "ok");
          return now.revision;
        }
      }
      this.observe(this.bucket, kind, "conflict");
      return false;
    }
  }

  async put(key: string, value: z.infer<S>): Promise<number> {
    return this.wrap("put", key, () => this.kv.put(key, JSON.stringify(this.schema.parse(value))));
  }

  /**
   * Deletes a key, also when the bucket is full: a delete writes a marker, which a bucket at its
   * max bytes refuses; then the key's stored messages are purged first (freeing at least the
   * marker's size) and the marker written after. Deleting a node must always work.
   */
  async delete(key: string): Promise<void> {
    await this.wrap("delete", key, async () => {
      try {
        await this.kv.delete(key);
      } catch (err) {
        if (!isStoreFull(err)) throw err;
        const { jsm, stream } = this.kv as unknown as { jsm: JetStreamManager; stream: string };
        await jsm.streams.purge(stream, { filter: `$KV.${this.bucket}.${key}` });
        await this.kv.delete(key);
      }
    });
  }

  /** Delete only if the key is still at `revision` (compare-and-set); resolves false when someone else wrote first. */
  async deleteIfRevision(key: string, revision: number): Promise<boolean> {
    try {
      await this.kv.delete(key, { previousSeq: revision });
      return true;
    } catch (err) {
      if (isRevisionConflict(err)) return false;
      throw new StoreUnavailableError(`${this.bucket}: delete ${key} failed`, { cause: err });
    }
  }

  async keys(filter?: string): Promise<string[]> {
    return this.wrap("keys", undefined, () => liveKeys(this.kv, filter, this.listing("keys")));
  }

  /** Every live key with its revision and when it was stored (values are not read). */
  async stamps(filter?: string): Promise<LiveStamp[]> {
    return this.wrap("stamps", undefined, () => liveStamps(this.kv, filter, this.listing("stamps")));
  }

  /** Every current record with its key (skipping values that no longer parse, which are reported), read in one pass. */
  async list(filter?: string, onInvalid?: (key: string, err: unknown) => void): Promise<Keyed<z.infer<S>>[]> {
    const entries = await this.wrap("list", undefined, () => liveEntries(this.kv, filter, this.listing("list")));
    const out: Keyed<z.infer<S>>[] = [];
    for (const e of entries) {
      try {
        out.push({ key: e.key, value: this.schema.parse(JSON.parse(decoder.decode(e.value))), revision: e.revision });
      } catch (err) {
        onInvalid?.(e.key, err);
      }
    }
    return out;
  }

  /** A listing read from the stream's replicas (no consumer could be made: keys.ts) is counted as `<op>.replicas`. */
  private listing(op: string): ListingOptions {
    return { onReplicas: () => this.observe(this.bucket, `${op}.replicas`, "ok") };
  }

  /** Reads and idempotent writes (put, delete): retried on any transient failure (STORE_RETRY_MS). */
  private async wrap<T>(op: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      const got = await this.attempt(key === undefined ? op : `${op} ${key}`, fn, ["not-processed", "ambiguous"]);
      this.observe(this.bucket, op, "ok");
      return got;
    } catch (err) {
      this.observe(this.bucket, op, "error");
      throw err;
    }
  }
}

/** A write refused because the bucket or JetStream is at its storage limit. */
export function isStoreFull(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (/maximum bytes exceeded|insufficient resources|resource limits exceeded|storage resources/i.test(e.message)) return true;
  }
  return false;
}
