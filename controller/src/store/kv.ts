/**
 * Typed JSON records in JetStream KV buckets, with compare-and-set helpers.
 * Every read returns the revision so writers can update transactionally, and
 * `change(key, fn)` is the one read-modify-write loop every writer uses.
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { Backoff, sleep } from "@weft/util";
import type { z } from "zod";
import { StoreUnavailableError } from "../errors.js";
import { liveEntries, liveKeys } from "./keys.js";

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
}

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
    try {
      const revision = await this.kv.create(key, JSON.stringify(this.schema.parse(value)));
      this.observe(this.bucket, "create", "ok");
      return revision;
    } catch (err) {
      if (isRevisionConflict(err)) {
        this.observe(this.bucket, "create", "conflict");
        return false;
      }
      this.observe(this.bucket, "create", "error");
      throw new StoreUnavailableError(`${this.bucket}: create ${key} failed`, { cause: err });
    }
  }

  /** Update at `revision`; resolves false when someone else wrote first. */
  async update(key: string, value: z.infer<S>, revision: number): Promise<number | false> {
    try {
      const next = await this.kv.update(key, JSON.stringify(this.schema.parse(value)), revision);
      this.observe(this.bucket, "update", "ok");
      return next;
    } catch (err) {
      if (isRevisionConflict(err)) {
        this.observe(this.bucket, "update", "conflict");
        return false;
      }
      this.observe(this.bucket, "update", "error");
      throw new StoreUnavailableError(`${this.bucket}: update ${key} failed`, { cause: err });
    }
  }

  async put(key: string, value: z.infer<S>): Promise<number> {
    return this.wrap("put", key, () => this.kv.put(key, JSON.stringify(this.schema.parse(value))));
  }

  async delete(key: string): Promise<void> {
    await this.wrap("delete", key, () => this.kv.delete(key));
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
    return this.wrap("keys", undefined, () => liveKeys(this.kv, filter));
  }

  /** Every current record with its key (skipping values that no longer parse, which are reported), read in one pass. */
  async list(filter?: string, onInvalid?: (key: string, err: unknown) => void): Promise<Keyed<z.infer<S>>[]> {
    const entries = await this.wrap("list", undefined, () => liveEntries(this.kv, filter));
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

  private async wrap<T>(op: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      const got = await fn();
      this.observe(this.bucket, op, "ok");
      return got;
    } catch (err) {
      this.observe(this.bucket, op, "error");
      throw new StoreUnavailableError(`${this.bucket}: ${key === undefined ? op : `${op} ${key}`} failed`, { cause: err });
    }
  }
}
