/**
 * Which bound nodes one sync of one account removes (pure): only on positive evidence, and
 * never many at once.
 *
 * - Evidence: the instance is `terminated` in a complete listing, or a complete listing that
 *   looked where it lives (its region) no longer has an instance it had stored. An incomplete or failed listing is no evidence: nothing is removed.
 * - A listing that is suddenly empty (the account listed instances last time, none now) is
 *   suspicious — a wrong account, a filter, an API fault — so every removal is held back.
 * - At most `maxRemovalShare` of the account's bound nodes go per cycle (at least one when any
 *   should): terminated before absent, then by node id; the rest are held back for later cycles.
 * - Stopped (or stopping) instances are reported, never removed: they may start again.
 */
import type { InventoryRemoval, InventoryInstanceState } from "@weft/protocol";
import type { StoredInstance } from "./store.js";

export interface Binding {
  nodeId: string;
  /** instanceKey() of the instance the node is bound to. */
  key: string;
  /** The instance's id as the cloud names it. */
  instanceId: string;
  /** The node's name, for reports. */
  name?: string | undefined;
}

export interface RemovalInput {
  /** "failed": the fetch threw; "listed": it returned a snapshot. */
  outcome: "failed" | "listed";
  complete: boolean;
  /** When the listing was made. */
  fetchedAt: string;
  /** Instances of this account in the listing, by instanceKey(). */
  listed: ReadonlyMap<string, StoredInstance>;
  /** Instances the last complete, non-suspicious listing had (undefined: never listed). */
  baseline: number | undefined;
  /** The account's bound nodes. */
  bindings: readonly Binding[];
  /** Stored records (listed or not) by key, for evidence such as when an absent instance was last seen. */
  stored: ReadonlyMap<string, StoredInstance>;
  maxRemovalShare: number;
  /**
   * Whether the listing covers where a stored instance lives (AWS: its region is one of the
   * configured regions). An instance outside it is not absent, just not looked for. Default: all.
   */
  covers?: (instance: StoredInstance) => boolean;
}

export interface RemovalDecision {
  remove: InventoryRemoval[];
  heldBack: InventoryRemoval[];
  heldBackReason: string | undefined;
  stopped: { nodeId: string; instance: string; state: InventoryInstanceState }[];
  /** True when the listing is empty though the account had instances: treated as no evidence. */
  suspicious: boolean;
}

/** How many of `bound` nodes one cycle may remove: the share rounded down, but at least one. */
export function removalLimit(bound: number, share: number): number {
  if (bound <= 0) return 0;
  return Math.max(1, Math.floor(bound * share));
}

export function isSuspiciouslyEmpty(listed: number, baseline: number | undefined): boolean {
  return listed === 0 && (baseline ?? 0) > 0;
}

const named = (b: Binding) => (b.name === undefined ? {} : { name: b.name });

export function decideRemovals(input: RemovalInput): RemovalDecision {
  const suspicious = input.outcome === "listed" && input.complete && isSuspiciouslyEmpty(input.listed.size, input.baseline);
  const candidates: InventoryRemoval[] = [];
  const stopped: RemovalDecision["stopped"] = [];
  for (const b of input.bindings) {
    const now = input.listed.get(b.key);
    if (now) {
      if (now.state === "terminated") {
        candidates.push({ nodeId: b.nodeId, ...named(b), instance: b.instanceId, reason: "terminated", evidence: `the listing of ${input.fetchedAt} has instance ${b.instanceId} terminated` });
      } else if (now.state === "stopped" || now.state === "stopping") {
        stopped.push({ nodeId: b.nodeId, instance: b.instanceId, state: now.state });
      }
      continue;
    }
    if (input.outcome !== "listed" || !input.complete) continue; // absence in a partial listing proves nothing
    // Absence proves something only of an instance this inventory saw, where the listing looked.
    const was = input.stored.get(b.key);
    if (!was || !(input.covers?.(was) ?? true)) continue;
    const last = was.seenAt;
    candidates.push({
      nodeId: b.nodeId,
      ...named(b),
      instance: b.instanceId,
      reason: "absent",
      evidence: `the complete listing of ${input.fetchedAt} (${input.listed.size} instances) does not have instance ${b.instanceId}${last ? `, last seen ${last}` : ""}`,
    });
  }
  candidates.sort((a, b) => (a.reason === b.reason ? a.nodeId.localeCompare(b.nodeId) : a.reason === "terminated" ? -1 : 1));
  if (candidates.length === 0) return { remove: [], heldBack: [], heldBackReason: undefined, stopped, suspicious };
  if (input.outcome !== "listed" || !input.complete) {
    return { remove: [], heldBack: candidates, heldBackReason: "the listing is incomplete: nothing is removed until a complete one", stopped, suspicious };
  }
  if (suspicious) {
    return {
      remove: [],
      heldBack: candidates,
      heldBackReason: `the account listed ${input.baseline} instances last time and none now: nothing is removed until it lists instances again (check the credentials and the account)`,
      stopped,
      suspicious,
    };
  }
  const limit = removalLimit(input.bindings.length, input.maxRemovalShare);
  const remove = candidates.slice(0, limit);
  const heldBack = candidates.slice(limit);
  return {
    remove,
    heldBack,
    heldBackReason:
      heldBack.length > 0
        ? `maxRemovalShare ${input.maxRemovalShare} of ${input.bindings.length} bound nodes allows ${limit} removal(s) per cycle; ${heldBack.length} wait for the next cycles`
        : undefined,
    stopped,
    suspicious,
  };
}
