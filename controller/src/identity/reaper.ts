/**
 * Releases identity numbers nothing references any more, after a grace (decide in a pure function,
 * act in a thin loop).
 *
 * Referenced means: some node record names it — a node's own identity, one of its workloads', or a
 * workload identity it dropped less than the grace ago (`recentIdentities`) — or it is reserved
 * (< 256). Compiled policies are not references of their own: they name identities the nodes and
 * policies select, and are recompiled within a second of a release. What agents may still hold
 * (a policy compiled before the release, an ipcache entry of a node deleted moments ago) is what
 * the grace is for: a number is released only after nothing referenced it for the whole grace,
 * and it stays a tombstone for another grace before it may name anything else.
 *
 * Each sweep reads the identities first and the nodes second, and every write is compare-and-set
 * on what it read: an identity handed out (allocate() clears the mark) between the two reads
 * changes its revision, so its release fails and waits for the next sweep.
 */
import { FIRST_ALLOCATED_IDENTITY, type NodeRecord } from "@weft/protocol";
import { Periodic } from "@weft/util";
import type { Logger } from "pino";
import type { ControllerCounters } from "../metrics/counters.js";
import type { IdentityAllocator, IdentityEntry } from "./allocator.js";

export interface IdentityRecord {
  value: IdentityEntry;
  revision: number;
}

export interface ReleasePlan {
  /** Unreferenced and not yet marked: mark now. */
  mark: IdentityRecord[];
  /** Marked but referenced again: take the mark off. */
  unmark: IdentityRecord[];
  /** Marked at least the grace ago and still unreferenced: release. */
  release: IdentityRecord[];
  /** Tombstones whose grace has passed: forget (the number may be taken again). */
  forget: IdentityRecord[];
}

/** The identity numbers the node records reference at `now`. */
export function referencedIdentities(nodes: Iterable<Pick<NodeRecord, "identity" | "workloads" | "recentIdentities">>, now: Date): Set<number> {
  const out = new Set<number>();
  for (const n of nodes) {
    if (n.identity) out.add(n.identity.id);
    for (const w of n.workloads ?? []) out.add(w.identity.id);
    for (const r of n.recentIdentities ?? []) if (Date.parse(r.until) > now.getTime()) out.add(r.identity.id);
  }
  return out;
}

export function decideReleases(input: { identities: readonly IdentityRecord[]; tombstones: readonly IdentityRecord[]; referenced: ReadonlySet<number>; now: Date; graceMs: number }): ReleasePlan {
  const plan: ReleasePlan = { mark: [], unmark: [], release: [], forget: [] };
  const now = input.now.getTime();
  for (const r of input.identities) {
    const used = r.value.id < FIRST_ALLOCATED_IDENTITY || input.referenced.has(r.value.id);
    const since = r.value.unreferencedSince === undefined ? undefined : Date.parse(r.value.unreferencedSince);
    if (used) {
      if (since !== undefined) plan.unmark.push(r);
    } else if (since === undefined || Number.isNaN(since)) plan.mark.push(r);
    else if (now - since >= input.graceMs) plan.release.push(r);
  }
  for (const t of input.tombstones) {
    const at = t.value.releasedAt === undefined ? NaN : Date.parse(t.value.releasedAt);
    if (!Number.isNaN(at) && now - at >= input.graceMs) plan.forget.push(t);
  }
  return plan;
}

export interface IdentityReaperOptions {
  identities: Pick<IdentityAllocator, "records" | "tombstones" | "mark" | "unmark" | "release" | "forget">;
  /** Every node record. */
  nodes: () => Promise<Pick<NodeRecord, "identity" | "workloads" | "recentIdentities">[]>;
  graceMs: number;
  /** Between sweeps. */
  intervalMs: number;
  counters?: ControllerCounters;
  now?: () => Date;
  log: Logger;
}

export class IdentityReaper {
  readonly #sweeps: Periodic<void>;

  constructor(private readonly o: IdentityReaperOptions) {
    this.#sweeps = new Periodic(() => this.#sweep(), o.intervalMs);
  }

  start(): void {
    this.#sweeps.start();
  }

  stop(): Promise<void> {
    return this.#sweeps.stop();
  }

  /** One sweep now (errors are logged); resolves with what it did. */
  sweep(): Promise<void> {
    return this.#sweeps.run();
  }

  async #sweep(): Promise<void> {
    const { identities, log } = this.o;
    try {
      const now = this.o.now?.() ?? new Date();
      // Identities before nodes: see the module comment.
      const [records, tombstones] = await Promise.all([identities.records(), identities.tombstones()]);
      const referenced = referencedIdentities(await this.o.nodes(), now);
      const plan = decideReleases({ identities: records, tombstones, referenced, now, graceMs: this.o.graceMs });
      for (const r of plan.mark) await identities.mark(r.value.spiffeId, r.revision, now);
      for (const r of plan.unmark) await identities.unmark(r.value.spiffeId, r.revision);
      let released = 0;
      for (const r of plan.release) {
        if (await identities.release(r.value, r.revision, now)) {
          released++;
          log.info({ identity: r.value.id, spiffeId: r.value.spiffeId, unreferencedSince: r.value.unreferencedSince }, "identity released: nothing referenced it for the grace");
        }
      }
      if (released > 0) this.o.counters?.identitiesReleased.inc({}, released);
      for (const t of plan.forget) await identities.forget(t.value.id, t.revision);
    } catch (err) {
      log.warn({ err }, "identity release sweep failed; retrying on the next one");
    }
  }
}
