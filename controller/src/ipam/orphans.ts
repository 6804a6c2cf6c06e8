/**
 * Releases claims no node holds (decide in a pure function, act in a thin loop): a WireGuard key,
 * name, overlay address or workload prefix claimed for a node id that has no node record, claimed
 * longer than the grace ago. Likewise removes a peer record whose node has no record, stored
 * longer than the grace ago: an enrollment writes the two records at once (NodeRegistry.add), and
 * a controller that died between them leaves the peer record, which every agent would keep.
 *
 * They are what a controller leaves when it dies in the middle: an enrollment claims first and
 * writes the node record last, a deletion removes the record first and the claims after, and a
 * rollback that cannot reach the store leaves its claims behind. Left alone, an orphaned WireGuard
 * key claim answers every retry of that agent's enrollment with 503 `enrollment_in_progress`, an
 * orphaned name refuses the name with 409 naming a node that does not exist, and orphaned addresses
 * and prefixes are lost to their ranges for good.
 *
 * Why the grace makes this safe: an enrollment gives up before it writes its node record once it
 * has taken half the grace (enroll.ts; a controller frozen mid-enrollment finds out when it
 * thaws), so a claim older than the grace whose owner has no record never gets one. Claims owned
 * by anything but a node id (a service's VIP, `service:<ref>`) belong to their own owners and are
 * not looked at. Each sweep reads the claims first and the node ids second, and every delete is
 * compare-and-set on the revision it read: a claim taken again meanwhile stays.
 */
import { NODE_ID_PATTERN } from "@weft/protocol";
import { Periodic } from "@weft/util";
import type { Logger } from "pino";
import type { LiveStamp } from "../store/keys.js";
import type { Keyed } from "../store/kv.js";
import type { Claim, Claims } from "./claims.js";

/** The claims owned by a node id with no record, claimed at least `graceMs` before `now`. */
export function orphanedClaims(claims: readonly Keyed<Claim>[], nodeIds: ReadonlySet<string>, now: Date, graceMs: number): Keyed<Claim>[] {
  return claims.filter((c) => {
    if (!NODE_ID_PATTERN.test(c.value.nodeId) || nodeIds.has(c.value.nodeId)) return false;
    const at = Date.parse(c.value.claimedAt);
    // An unreadable time is no evidence of age: such a claim is left alone (and reported by no one).
    return !Number.isNaN(at) && now.getTime() - at >= graceMs;
  });
}

/** The peer records (keyed by node id) of node ids with no record, stored at least `graceMs` before `now`. */
export function orphanedPeers(peers: readonly LiveStamp[], nodeIds: ReadonlySet<string>, now: Date, graceMs: number): LiveStamp[] {
  return peers.filter((p) => NODE_ID_PATTERN.test(p.key) && !nodeIds.has(p.key) && now.getTime() - p.created.getTime() >= graceMs);
}

export interface OrphanReaperOptions {
  claims: Pick<Claims, "entries" | "releaseIfRevision">;
  /** The peer records (keys, revisions and store times), removed only by compare-and-set on the revision listed. */
  peers?: { stamps(): Promise<LiveStamp[]>; deleteIfRevision(key: string, revision: number): Promise<boolean> };
  /** The ids of every node record. */
  nodeIds: () => Promise<Iterable<string>>;
  graceMs: number;
  /** Between sweeps. */
  intervalMs: number;
  log: Logger;
}

export class OrphanReaper {
  readonly #sweeps: Periodic<number>;

  constructor(private readonly o: OrphanReaperOptions) {
    this.#sweeps = new Periodic(() => this.#sweep(), o.intervalMs);
  }

  start(): void {
    this.#sweeps.start();
  }

  stop(): Promise<void> {
    return this.#sweeps.stop();
  }

  /** One sweep now (errors are logged); resolves with how many claims and peer records it removed. */
  sweep(): Promise<number> {
    return this.#sweeps.run();
  }

  async #sweep(): Promise<number> {
    const { claims, log } = this.o;
    try {
      // Claims and peer records before node ids: a node written between the reads is seen.
      const [entries, peers] = await Promise.all([claims.entries(), this.o.peers?.stamps() ?? []]);
      const nodeIds = new Set(await this.o.nodeIds());
      const now = new Date();
      let released = 0;
      for (const c of orphanedClaims(entries, nodeIds, now, this.o.graceMs)) {
        if (!(await claims.releaseIfRevision(c.key, c.revision))) continue;
        released++;
        log.warn({ claim: c.key, node: c.value.nodeId, claimedAt: c.value.claimedAt }, "claim released: its node has no record (an enrollment or deletion was interrupted)");
      }
      for (const p of orphanedPeers(peers, nodeIds, now, this.o.graceMs)) {
        if (!(await this.o.peers!.deleteIfRevision(p.key, p.revision))) continue;
        released++;
        log.warn({ node: p.key, storedAt: p.created.toISOString() }, "peer record removed: its node has no record (an enrollment was interrupted)");
      }
      return released;
    } catch (err) {
      log.warn({ err }, "orphaned claim sweep failed; retrying on the next one");
      return 0;
    }
  }
}
