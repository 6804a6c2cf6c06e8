/**
 * Identity allocation: each SPIFFE ID gets one stable number for the datapath,
 * allocated once and never reused. Two keys per identity in the identities
 * bucket, both created with compare-and-set: `id.<n>` (the number is taken)
 * and `spiffe.<base64url>` (the SPIFFE ID → number). Of two controllers or
 * enrollments allocating the same SPIFFE ID at once, one number wins and the
 * loser's number is released.
 */
import { FIRST_ALLOCATED_IDENTITY, type Identity } from "@weft/protocol";
import { z } from "zod";
import type { RecordStore } from "../store/kv.js";

export const IdentityEntry = z.object({ id: z.number().int(), spiffeId: z.string(), createdAt: z.string() });
export type IdentityEntry = z.infer<typeof IdentityEntry>;
export type IdentityStore = RecordStore<typeof IdentityEntry>;

const spiffeKey = (spiffeId: string) => `spiffe.${Buffer.from(spiffeId).toString("base64url")}`;
const idKey = (id: number) => `id.${id}`;
const MAX_RACES = 1000;

export class IdentityAllocator {
  /** Highest number seen taken, so allocation does not rescan from the start each time. */
  private hint = FIRST_ALLOCATED_IDENTITY - 1;

  constructor(private readonly store: IdentityStore) {}

  /** The identity of `spiffeId`, allocating a number the first time it is seen. */
  async allocate(spiffeId: string): Promise<Identity> {
    const existing = await this.store.get(spiffeKey(spiffeId));
    if (existing) return { id: existing.value.id, spiffeId };
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

  async list(): Promise<Identity[]> {
    const all = await this.store.list("spiffe.>");
    return all.map((e) => ({ id: e.value.id, spiffeId: e.value.spiffeId })).sort((a, b) => a.id - b.id);
  }

  private async highestTaken(): Promise<number> {
    const ids = (await this.store.keys("id.>")).map((k) => Number(k.slice(3))).filter(Number.isInteger);
    return Math.max(FIRST_ALLOCATED_IDENTITY - 1, ...ids);
  }
}
