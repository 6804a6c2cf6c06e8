/**
 * Typed JSON records in JetStream KV buckets, with compare-and-set helpers.
 * Every read returns the revision so writers can update transactionally.
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { z } from "zod";
import { StoreUnavailableError } from "../errors.js";
import { liveEntries, liveKeys } from "./keys.js";

export interface Versioned<T> {
  value: T;
  revision: number;
}

/** True when a KV create/update lost a compare-and-set race (or the key exists). */
export function isRevisionConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

const decoder = new TextDecoder();

export class RecordStore<S extends z.ZodType> {
  constructor(
    readonly kv: KV,
    private readonly schema: S,
    private readonly bucket: string,
  ) {}

  async get(key: string): Promise<Versioned<z.infer<S>> | undefined> {
    const entry = await this.wrap(`get ${key}`, () => this.kv.get(key));
    if (!entry || entry.operation !== "PUT") return undefined;
    return { value: this.schema.parse(entry.json()), revision: entry.revision };
  }

  /** Create; resolves false when the key already exists. */
  async create(key: string, value: z.infer<S>): Promise<number | false> {
    try {
      return await this.kv.create(key, JSON.stringify(this.schema.parse(value)));
    } catch (err) {
      if (isRevisionConflict(err)) return false;
      throw new StoreUnavailableError(`${this.bucket}: create ${key} failed`, { cause: err });
    }
  }

  /** Update at `revision`; resolves false when someone else wrote first. */
  async update(key: string, value: z.infer<S>, revision: number): Promise<number | false> {
    try {
      return await this.kv.update(key, JSON.stringify(this.schema.parse(value)), revision);
    } catch (err) {
      if (isRevisionConflict(err)) return false;
      throw new StoreUnavailableError(`${this.bucket}: update ${key} failed`, { cause: err });
    }
  }

  async put(key: string, value: z.infer<S>): Promise<number> {
    return this.wrap(`put ${key}`, () => this.kv.put(key, JSON.stringify(this.schema.parse(value))));
  }

  async delete(key: string): Promise<void> {
    await this.wrap(`delete ${key}`, () => this.kv.delete(key));
  }

  async keys(filter?: string): Promise<string[]> {
    return this.wrap("keys", () => liveKeys(this.kv, filter));
  }

  /** Every current record (skipping values that no longer parse, which are reported), read in one pass. */
  async list(filter?: string, onInvalid?: (key: string, err: unknown) => void): Promise<Versioned<z.infer<S>>[]> {
    const entries = await this.wrap("list", () => liveEntries(this.kv, filter));
    const out: Versioned<z.infer<S>>[] = [];
    for (const e of entries) {
      try {
        out.push({ value: this.schema.parse(JSON.parse(decoder.decode(e.value))), revision: e.revision });
      } catch (err) {
        onInvalid?.(e.key, err);
      }
    }
    return out;
  }

  private async wrap<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new StoreUnavailableError(`${this.bucket}: ${op} failed`, { cause: err });
    }
  }
}
