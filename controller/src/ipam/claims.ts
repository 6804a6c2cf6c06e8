/**
 * Uniqueness claims in the ipam bucket: one key per overlay address, workload
 * prefix, WireGuard public key and node name, each created with compare-and-set
 * so two enrollments can never own the same one.
 *
 * Which addresses and prefixes are taken is what allocation reads on every
 * enrollment; after `follow()` a watch of their keys (key names only) keeps them in
 * memory, so an enrollment does not list the whole fleet's claims. The set is a
 * hint that may lag a moment: the compare-and-set create stays the judge, and a
 * lost race moves on to the next candidate.
 */
import type { KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "pino";
import { z } from "zod";
import type { Keyed, RecordStore } from "../store/kv.js";

export const Claim = z.object({ nodeId: z.string(), claimedAt: z.string() });
export type Claim = z.infer<typeof Claim>;
export type ClaimStore = RecordStore<typeof Claim>;

export type ClaimKind = "addr" | "wprefix" | "wgkey" | "name";

export function claimKey(kind: ClaimKind, value: string): string {
  switch (kind) {
    case "addr":
      return `addr.${value}`;
    case "wprefix":
      // 100.80.3.0/24 → wprefix.100.80.3.0_24 ('/' would be a key separator for some tools)
      return `wprefix.${value.replace("/", "_")}`;
    case "wgkey":
      return `wgkey.${Buffer.from(value, "base64").toString("hex")}`;
    case "name":
      return `name.${value}`;
  }
}

type Stoppable = AsyncIterable<KvWatchEntry> & { stop(): void };

const ADDR = "addr.";
const WPREFIX = "wprefix.";

export class Claims {
  /** Taken addresses and prefix keys, kept by the watch (undefined: not followed, read the bucket). */
  #addresses: Set<string> | undefined;
  #prefixes: Set<string> | undefined;
  #watch: Stoppable | undefined;
  #stopped = false;

  constructor(private readonly store: ClaimStore) {}

  /** Follows the address and prefix claims (a watch of their keys); resolves once the current ones are in. */
  async follow(log: Logger): Promise<void> {
    const addresses = new Set<string>();
    const prefixes = new Set<string>();
    const note = (e: KvWatchEntry) => {
      const put = e.operation === "PUT";
      if (e.key.startsWith(ADDR)) {
        const a = e.key.slice(ADDR.length);
        if (put) addresses.add(a);
        else addresses.delete(a);
      } else if (e.key.startsWith(WPREFIX)) {
        if (put) prefixes.add(e.key);
        else prefixes.delete(e.key);
      }
    };
    const watch = (await this.store.kv.watch({ key: [`${ADDR}>`, `${WPREFIX}>`], headers_only: true })) as Stoppable;
    this.#watch = watch;
    let ready: () => void = () => undefined;
    const loaded = new Promise<void>((r) => (ready = r));
    // An empty selection yields nothing to wait for: the current keys say whether there is any.
    if ((await this.store.keys(`${ADDR}>`)).length === 0 && (await this.store.keys(`${WPREFIX}>`)).length === 0) ready();
    void (async () => {
      try {
        for await (const e of watch) {
          note(e);
          if (e.delta === 0) {
            this.#addresses = addresses;
            this.#prefixes = prefixes;
            ready();
          }
        }
      } catch (err) {
        if (!this.#stopped) log.warn({ err }, "watching ipam claims failed; allocation reads the bucket");
      } finally {
        // Not followed any more: read the bucket again.
        this.#addresses = undefined;
        this.#prefixes = undefined;
        ready();
      }
    })();
    await loaded;
    this.#addresses ??= addresses;
    this.#prefixes ??= prefixes;
  }

  stop(): void {
    this.#stopped = true;
    this.#watch?.stop();
  }

  /** Claim `value` for `nodeId`; returns the current owner's id when already taken. */
  async claim(kind: ClaimKind, value: string, nodeId: string): Promise<{ ok: true } | { ok: false; owner: string }> {
    const key = claimKey(kind, value);
    const created = await this.store.create(key, { nodeId, claimedAt: new Date().toISOString() });
    // Taken either way: the next allocation need not try it again before the watch says so.
    if (kind === "addr") this.#addresses?.add(value);
    if (kind === "wprefix") this.#prefixes?.add(key);
    if (created !== false) return { ok: true };
    const owner = await this.store.get(key);
    return { ok: false, owner: owner?.value.nodeId ?? "another node" };
  }

  async owner(kind: ClaimKind, value: string): Promise<string | undefined> {
    return (await this.store.get(claimKey(kind, value)))?.value.nodeId;
  }

  /** Release a claim, but only if `nodeId` still owns it. */
  async release(kind: ClaimKind, value: string, nodeId: string): Promise<void> {
    const key = claimKey(kind, value);
    const got = await this.store.get(key);
    if (got?.value.nodeId !== nodeId) return;
    await this.store.delete(key);
    if (kind === "addr") this.#addresses?.delete(value);
    if (kind === "wprefix") this.#prefixes?.delete(key);
  }

  /** Every claim with its key and revision, read in one pass (for the orphan sweep, orphans.ts). */
  async entries(): Promise<Keyed<Claim>[]> {
    return this.store.list();
  }

  /** Delete the claim under `key` if it is still at `revision`; false when it changed meanwhile. The watch updates the followed sets. */
  async releaseIfRevision(key: string, revision: number): Promise<boolean> {
    return this.store.deleteIfRevision(key, revision);
  }

  /** Claimed workload prefixes (`a.b.c.d/len`). */
  async claimedPrefixes(): Promise<string[]> {
    const keys = this.#prefixes ? [...this.#prefixes] : await this.store.keys(`${WPREFIX}>`);
    return keys.map((k) => k.slice(WPREFIX.length).replace("_", "/"));
  }

  /** Claimed overlay addresses (read only; the followed set itself when followed). */
  async claimedAddresses(): Promise<ReadonlySet<string>> {
    if (this.#addresses) return this.#addresses;
    const keys = await this.store.keys(`${ADDR}>`);
    return new Set(keys.map((k) => k.slice(ADDR.length)));
  }
}
