/**
 * The leader lease, decided in pure functions: what a controller does on each tick given the
 * lease record it read (or failed to read), what it last saw, and its own monotonic clock.
 *
 * No clock is shared between controllers. A follower takes the lease only after it has seen the
 * same revision for a whole lease period on its own clock; a leader counts its lease from the
 * moment it *sent* its last successful renewal, and stops acting a safety margin before that lease
 * ends. The renewal was stored after it was sent and a follower saw it after it was stored, so
 * the old leader has stopped before any follower may take over (fencing by revision: every take
 * or renewal is a compare-and-set on the revision the writer read).
 */
import { z } from "zod";

export const LEASE_KEY = "lease";

export const LeaseRecord = z
  .object({
    /** The controller holding (or last holding) the lease. */
    holder: z.string().min(1).max(200),
    /** Increases with every new holder. */
    term: z.number().int().min(1),
    /** The holder's REST API, for "ask the leader" answers. */
    api: z.string().max(500).optional(),
    /** When the holder last renewed, by its clock (informational only). */
    renewedAt: z.string().max(64),
    /** The holder gave the lease up (stopping): anyone may take it at once. */
    released: z.boolean().optional(),
  })
  .strict();
export type LeaseRecord = z.infer<typeof LeaseRecord>;

/** The lease as read: absent, or a record at a revision. */
export type LeaseRead = { kind: "absent"; revision?: number } | { kind: "held"; record: LeaseRecord; revision: number };

/** What a follower remembers between ticks: the revision it last saw and when (its clock) it first saw it. */
export interface Observation {
  revision: number;
  since: number;
}

export type FollowerAction =
  | { action: "wait"; observation: Observation | undefined }
  | { action: "take"; term: number; /** compare-and-set against this revision; undefined = create */ revision: number | undefined };

/**
 * A follower's tick: take an absent or released lease at once, and a held one whose last write is
 * this controller's own (`selfId`: it stepped down — its renewal came late, or timed out here but
 * was stored — and nobody has written since, so nobody else leads); take another's held lease only
 * when its revision has not moved for `leaseMs` on this controller's clock, else remember what it
 * saw. Every take is a compare-and-set on the revision read, so a stale read only loses the race.
 */
export function followerTick(read: LeaseRead, seen: Observation | undefined, now: number, leaseMs: number, selfId?: string): FollowerAction {
  if (read.kind === "absent") return { action: "take", term: 1, revision: read.revision };
  const { record, revision } = read;
  if (record.released || (selfId !== undefined && record.holder === selfId)) return { action: "take", term: record.term + 1, revision };
  if (!seen || seen.revision !== revision) return { action: "wait", observation: { revision, since: now } };
  if (now - seen.since >= leaseMs) return { action: "take", term: record.term + 1, revision };
  return { action: "wait", observation: seen };
}

/**
 * Until when (its clock) a leader may act after a renewal (or take) it sent at `sentAt` was
 * stored: the lease minus a margin, so in-flight work ends before any follower may take over.
 */
export function actUntil(sentAt: number, leaseMs: number, marginMs: number): number {
  return sentAt + leaseMs - marginMs;
}
