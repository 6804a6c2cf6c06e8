/**
 * Revocations shared through the store (`weft-revocations`), so that a node deleted through any
 * controller is revoked on every controller and every NATS server:
 *
 * - `record(key, at)`: the controller that revokes writes the entry (compare-and-set; per key the
 *   later time wins) after its own authority recorded it and pushed the account JWT.
 * - every controller watches the bucket and folds each entry into its authority
 *   (`adoptRevocations`: its file and the account JWT it signs), then pushes that JWT — so the
 *   JWT any controller pushes (after a revocation, after a NATS reconnect) carries them all.
 * - at start, the entries of the local file (`authority/revocations.json`, where revocations
 *   lived before) are written to the bucket, so nothing revoked earlier is lost.
 * - pruning (entries that cover only expired JWTs): every controller prunes its own list; the
 *   leader alone deletes the pruned entries from the bucket (fenced).
 *
 * The record's one owner is this module; writes are idempotent merges, so any controller may
 * record. The bucket, not any file, is what a restore brings back.
 */
import { KvWatchInclude, type KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { z } from "zod";
import type { Fence } from "../leader/fence.js";
import type { Authority, NatsAccess } from "../nats/index.js";
import type { RecordStore } from "../store/kv.js";

export const StoredRevocation = z.object({ revokedAt: z.number().int().positive() }).strict();
export type StoredRevocation = z.infer<typeof StoredRevocation>;
export type RevocationStore = RecordStore<typeof StoredRevocation>;

export interface SharedRevocationsOptions {
  store: RevocationStore;
  authority: Authority;
  access: Pick<NatsAccess, "sync" | "prune">;
  /** The leader fence: only the leader deletes pruned entries. */
  fence: Fence;
  log: Logger;
}

export class SharedRevocations {
  readonly #o: SharedRevocationsOptions;
  #stopped = false;
  #watching: Promise<void> = Promise.resolve();
  #stopWatch: (() => void) | undefined;

  constructor(o: SharedRevocationsOptions) {
    this.#o = o;
  }

  /** Records a revocation in the store (per key the later time wins). Throws store errors. */
  async record(userPublicKey: string, revokedAt: Date): Promise<void> {
    const at = Math.floor(revokedAt.getTime() / 1000);
    await this.#o.store.change(userPublicKey, (current) => (current && current.revokedAt >= at ? undefined : { revokedAt: at }));
  }

  /**
   * Uploads the local list, takes in what is stored, then follows the bucket. Resolves once the
   * stored list is in this controller's authority.
   */
  async start(): Promise<void> {
    const kv: KV = this.#o.store.kv;
    // Updates first (nothing written between the listing and the watch is missed), then the listing.
    const watch = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
    this.#stopWatch = () => watch.stop();
    this.#watching = (async () => {
      for await (const e of watch) {
        if (this.#stopped) break;
        if (e.operation !== "PUT") continue;
        const parsed = StoredRevocation.safeParse(safeJson(e.value));
        if (!parsed.success) {
          this.#o.log.warn({ user: e.key, revision: e.revision }, "ignoring a malformed revocation record");
          continue;
        }
        await this.#adopt(new Map([[e.key, parsed.data.revokedAt]]));
      }
    })().catch((err: unknown) => this.#o.log.error({ err }, "revocations: the watch ended"));
    await this.uploadLocal();
    const stored = await this.#o.store.list(undefined, (key, err) => this.#o.log.warn({ user: key, err }, "skipping an unreadable revocation record"));
    await this.#adopt(new Map(stored.map((r) => [r.key, r.value.revokedAt])));
  }

  /** Writes the local list to the store (idempotent; start, and after the store was unreachable). */
  async uploadLocal(): Promise<void> {
    const now = new Date();
    for (const [key, at] of this.#o.authority.revocations()) {
      if (this.#o.authority.prunable(at, now)) continue;
      await this.record(key, new Date(at * 1000)).catch((err: unknown) => this.#o.log.warn({ user: key, err }, "cannot record a local revocation in the store; retrying at the next prune"));
    }
  }

  /**
   * Prunes this controller's list (pushing the smaller JWT) and, in the leader, deletes the
   * stored entries that cover only expired JWTs; then uploads the local list again. Never throws.
   */
  async prune(now: Date = new Date()): Promise<void> {
    await this.#o.access.prune(now);
    if (this.#o.fence()) {
      try {
        const stored = await this.#o.store.list();
        for (const r of stored) if (this.#o.authority.prunable(r.value.revokedAt, now) && this.#o.fence()) await this.#o.store.delete(r.key);
      } catch (err) {
        this.#o.log.warn({ err }, "cannot prune the stored revocations; will try again");
      }
    }
    await this.uploadLocal();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopWatch?.();
    await this.#watching;
  }

  async #adopt(list: ReadonlyMap<string, number>): Promise<void> {
    if (list.size === 0) return;
    try {
      const added = await this.#o.authority.adoptRevocations(list);
      if (added.length === 0) return;
      this.#o.log.info({ adopted: added.length, revokedUsers: this.#o.authority.revocations().size }, "took in revocations recorded by other controllers");
      this.#o.access.sync();
    } catch (err) {
      this.#o.log.error({ err }, "cannot take in stored revocations (the authority's revocation file?)");
    }
  }
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}
