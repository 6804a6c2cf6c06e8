/**
 * Identity allocation: each SPIFFE ID gets one stable number for the datapath.
 * Two keys per identity in the identities bucket, both created with
 * compare-and-set: `id.<n>` (the number is taken) and `spiffe.<base64url>` (the
 * SPIFFE ID → number). Of two controllers or enrollments allocating the same
 * SPIFFE ID at once, one number wins and the loser's number is released.
 *
 * Numbers nothing references are released by the reaper (reaper.ts) after a
 * grace: it marks the `spiffe.` record `unreferencedSince`, and allocate() clears
 * that mark (compare-and-set) whenever it hands the identity out again, so a
 * release never removes an identity someone was just given. A released number
 * keeps its `id.<n>` record as a tombstone (`releasedAt`) for another grace, so
 * it cannot name another SPIFFE ID while agents may still hold policy naming it.
 */
import { FIRST_ALLOCATED_IDENTITY, type Identity } from "@weft/protocol";
import { z } from "zod";
import type { RecordStore } from "../store/kv.js";

export const IdentityEntry = z.object({
  id: z.number().int(),
  spiffeId: z.string(),
  createdAt: z.string(),
  /** On `spiffe.` records: since when nothing references the identity (the reaper's mark). */
  unreferencedSince: z.string().optional(),
  /** On `id.` records: the number was released then, and is not reused before the grace has passed again. */
  releasedAt: z.string().optional(),
});
export type IdentityEntry = z.infer<typeof IdentityEntry>;
export type IdentityStore = RecordStore<typeof IdentityEntry>;

export const spiffeKey = (spiffeId: string) => `spiffe.${Buffer.from(spiffeId).toString("base64url")}`;
export const idKey = (id: number) => `id.${id}`;
const MAX_RACES = 1000;

export class IdentityAllocator {
  /** Highest number seen taken, so allocation does not rescan from the start each time. */
  private hint = FIRST_ALLOCATED_IDENTITY - 1;

  constructor(private readonly store: IdentityStore) {}

  /** The identity of `spiffeId`, allocating a number the first time it is seen. */
  async allocate(spiffeId: string): Promise<Identity> {
    for (let race = 0; race < MAX_RACES; race++) {
      const existing = await this.store.get(spiffeKey(spiffeId));
      if (!existing) break;
      if (existing.value.unreferencedSince === undefined) return { id: existing.value.id, spiffeId };
      // Marked for release: take the mark off first, so the reaper's compare-and-set release fails.
      const { unreferencedSince: _mark, ...kept } = existing.value;
      if ((await this.store.update(spiffeKey(spiffeId), kept, existing.revision)) !== false) return { id: existing.value.id, spiffeId };
    }
    if (this.hint < FIRST_ALLOCATED_IDENTITY) this.hint = await this.highestTaken();
    for (let race = 0; race < MAX_RACES; race++) {
      const id = ++this.hint;
      const entry = { id, spiffeId, createdAt: new Date().toISOString() };
      if ((await this.store.create(idKey(id), entry)) === false) continue; // number taken meanwhile
      if ((await this.store.create(spiffeKey(spiffeId), entry)) !== false) return { id, spiffeId };
      // Someone allocated this SPIFFE ID first: give our number back and use theirs.
      await this.store.delete(idKey(id));
      const winner = await this.store.get(spiffeKey(spiffeId));
      if (winner) return { id: winner.value.id, spiffeId };
    }
    throw new Error(`identity for ${spiffeId}: allocation kept losing races; retry`);
  }

  /** Every `spiffe.` record with its revision (the reaper's input). */
  records(): Promise<{ key: string; value: IdentityEntry; revision: number }[]> {
    return this.store.list("spiffe.>");
  }

  /** Every `id.` tombstone (released numbers) with its revision. */
  async tombstones(): Promise<{ key: string; value: IdentityEntry; revision: number }[]> {
    return (await this.store.list("id.>")).filter((r) => r.value.releasedAt !== undefined);
  }

  /** Marks an identity unreferenced since `at` (compare-and-set on `revision`); false when it changed meanwhile. */
  async mark(spiffeId: string, revision: number, at: Date): Promise<boolean> {
    const got = await this.store.get(spiffeKey(spiffeId));
    if (!got || got.revision !== revision) return false;
    return (await this.store.update(spiffeKey(spiffeId), { ...got.value, unreferencedSince: at.toISOString() }, revision)) !== false;
  }

  /** Takes the mark off (it is referenced again); false when it changed meanwhile. */
  async unmark(spiffeId: string, revision: number): Promise<boolean> {
    const got = await this.store.get(spiffeKey(spiffeId));
    if (!got || got.revision !== revision) return false;
    const { unreferencedSince: _mark, ...kept } = got.value;
    return (await this.store.update(spiffeKey(spiffeId), kept, revision)) !== false;
  }

  /**
   * Releases an identity marked at `revision`: its `spiffe.` record is deleted only if unchanged
   * since (compare-and-set), then its number is kept as a tombstone. False when it changed meanwhile.
   */
  async release(entry: IdentityEntry, revision: number, at: Date): Promise<boolean> {
    if (!(await this.store.deleteIfRevision(spiffeKey(entry.spiffeId), revision))) return false;
    const { unreferencedSince: _mark, ...kept } = entry;
    await this.store.put(idKey(entry.id), { ...kept, releasedAt: at.toISOString() });
    return true;
  }

  /** Forgets a tombstone whose grace has passed (the number may be taken again). */
  async forget(id: number, revision: number): Promise<boolean> {
    return this.store.deleteIfRevision(idKey(id), revision);
  }

  async list(): Promise<Identity[]> {
    const all = await this.store.list("spiffe.>");
    return all.map((e) => ({ id: e.value.id, spiffeId: e.value.spiffeId })).sort((a, b) => a.id - b.id);
  }

  private async highestTaken(): Promise<number> {
    const ids = (await this.store.keys("id.>")).map((k) => Number(k.slice(3))).filter(Number.isInteger);
    return Math.max(FIRST_ALLOCATED_IDENTITY - 1, ...ids);
  }
}
