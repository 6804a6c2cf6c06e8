/**
 * What one account's listing means for the stored inventory (pure; apply.ts does the writes):
 *
 * - `acceptListing`: the listing narrowed to the account it was asked for (a record of another
 *   account is skipped, reported, and makes the listing incomplete), keyed and stamped `seenAt`;
 * - `bindingsOf`: which nodes are bound to which of the account's instances (a stored record's
 *   `boundNode`, else the instance a node record names);
 * - `sameRecord`: when a listed record needs no write (same content, `seenAt` fresh enough);
 * - `planRecordCleanup`, `staleNetworks`: what a complete, plausible listing deletes — records of
 *   instances it no longer has, except bound ones, which are kept marked `absentSince` as the
 *   evidence for their node's removal;
 * - `accountStatusOf`, `failedStatusOf`: the account's status after a sync, or after a failure.
 */
import type { InventorySnapshot } from "@weft/cloud";
import { CloudProvider, type InventoryIssueRecord, type InventoryRemoval, type NodeRecord, type NodeView } from "@weft/protocol";
import { z } from "zod";
import { canonicalJson } from "../store/canonical.js";
import type { Versioned } from "../store/kv.js";
import type { Binding, RemovalDecision } from "./revoke.js";
import { instanceKey, keyOfInstance, keyOfNetwork, type AccountStatus, type StoredInstance, type StoredNetwork } from "./store.js";

export interface AcceptedListing {
  /** The account's instances, by instanceKey(). */
  instances: Map<string, StoredInstance>;
  /** The account's networks, by networkKey(). */
  networks: Map<string, StoredNetwork>;
  issues: InventoryIssueRecord[];
  complete: boolean;
}

/** The listing of `provider:account`, keyed and stamped with when it was fetched. */
export function acceptListing(snap: InventorySnapshot, provider: CloudProvider, account: string): AcceptedListing {
  const issues: InventoryIssueRecord[] = [...snap.issues];
  let complete = snap.complete;
  const seenAt = snap.fetchedAt;
  const instances = new Map<string, StoredInstance>();
  for (const i of snap.instances) {
    if (i.provider !== provider || i.account !== account) {
      issues.push({ scope: `instance ${i.id}`, code: "foreign_account", message: `listed under ${i.provider}:${i.account}, not ${provider}:${account}; skipped` });
      complete = false;
      continue;
    }
    instances.set(keyOfInstance(i), { ...i, seenAt });
  }
  const networks = new Map<string, StoredNetwork>();
  for (const n of snap.networks) if (n.provider === provider && n.account === account) networks.set(keyOfNetwork(n), { ...n, seenAt });
  return { instances, networks, issues, complete };
}

/** The instance a node record names (NodeRecord.instance, written by the join checks), read defensively. */
const InstanceRef = z.object({ provider: CloudProvider, account: z.string(), id: z.string() });
export function instanceRefOf(node: NodeRecord | NodeView): z.infer<typeof InstanceRef> | undefined {
  const r = InstanceRef.safeParse((node as { instance?: unknown }).instance);
  return r.success ? r.data : undefined;
}

/**
 * The account's bound nodes, by node id: a stored record's `boundNode` (when that node exists),
 * else the instance the node record names.
 */
export function bindingsOf(input: { stored: readonly Versioned<StoredInstance>[]; nodes: readonly NodeView[]; provider: CloudProvider; account: string }): Map<string, Binding> {
  const exists = new Set(input.nodes.map((n) => n.nodeId));
  const bindings = new Map<string, Binding>();
  for (const e of input.stored) {
    const b = e.value.boundNode;
    if (b !== undefined && exists.has(b)) bindings.set(b, { nodeId: b, key: keyOfInstance(e.value), instanceId: e.value.id });
  }
  for (const n of input.nodes) {
    const ref = instanceRefOf(n);
    if (ref && ref.provider === input.provider && ref.account === input.account && !bindings.has(n.nodeId)) {
      bindings.set(n.nodeId, { nodeId: n.nodeId, key: instanceKey(ref.provider, ref.account, ref.id), instanceId: ref.id });
    }
  }
  return bindings;
}

/**
 * When a listed record needs no write: it says what the stored one says (`seenAt` aside) and the
 * stored `seenAt` is younger than `refreshMs` at `now`.
 */
export function sameRecord<T extends { seenAt: string }>(now: number, refreshMs: number): (stored: T, listed: T) => boolean {
  return (stored, listed) => canonicalJson({ ...stored, seenAt: "" }) === canonicalJson({ ...listed, seenAt: "" }) && now - Date.parse(stored.seenAt) < refreshMs;
}

export interface RecordCleanup {
  /** Bound records the listing no longer has, not yet marked: set `absentSince`. */
  markAbsent: string[];
  /** Unbound records the listing no longer has: delete, if still at this revision. */
  remove: { key: string; revision: number }[];
}

/**
 * What a complete, plausible listing does to the stored records it no longer has. A record is
 * bound when a binding names it or its `boundNode` is a node that exists.
 */
export function planRecordCleanup(input: {
  stored: ReadonlyMap<string, Versioned<StoredInstance>>;
  listed: ReadonlyMap<string, StoredInstance>;
  boundKeys: ReadonlySet<string>;
  nodeExists: (nodeId: string) => boolean;
}): RecordCleanup {
  const out: RecordCleanup = { markAbsent: [], remove: [] };
  for (const [key, e] of input.stored) {
    if (input.listed.has(key)) continue;
    if (input.boundKeys.has(key) || (e.value.boundNode !== undefined && input.nodeExists(e.value.boundNode))) {
      if (e.value.absentSince === undefined) out.markAbsent.push(key);
    } else {
      out.remove.push({ key, revision: e.revision });
    }
  }
  return out;
}

/** Keys of stored networks a complete, plausible listing no longer has. */
export function staleNetworks(stored: readonly StoredNetwork[], listed: ReadonlyMap<string, StoredNetwork>): string[] {
  return stored.map(keyOfNetwork).filter((key) => !listed.has(key));
}

export interface AccountOutcome {
  provider: CloudProvider;
  account: string;
  fetchedAt: string;
  listing: AcceptedListing;
  /** Issues found while applying the listing (besides the listing's own). */
  issues: readonly InventoryIssueRecord[];
  /** The listing counted as evidence (complete and not suspicious). */
  evidence: boolean;
  baseline: number | undefined;
  bound: number;
  changes: AccountStatus["changes"];
  removed: InventoryRemoval[];
  heldBack: InventoryRemoval[];
  heldBackReason: string | undefined;
  stopped: RemovalDecision["stopped"];
  relabelled: string[];
  syncedAt: string;
}

/** The account's status after a listing was applied. */
export function accountStatusOf(o: AccountOutcome): AccountStatus {
  const { listing } = o;
  return {
    provider: o.provider,
    account: o.account,
    syncedAt: o.syncedAt,
    lastSuccessAt: o.fetchedAt,
    result: listing.complete ? "ok" : "partial",
    complete: listing.complete,
    issues: [...listing.issues, ...o.issues],
    counts: { instances: listing.instances.size, networks: listing.networks.size, bound: o.bound - o.removed.length },
    ...(o.evidence ? { lastCompleteInstances: listing.instances.size } : o.baseline !== undefined ? { lastCompleteInstances: o.baseline } : {}),
    changes: o.changes,
    removed: o.removed,
    heldBack: o.heldBack,
    ...(o.heldBack.length > 0 && o.heldBackReason ? { heldBackReason: o.heldBackReason } : {}),
    stopped: o.stopped,
    relabelled: o.relabelled,
  };
}

/** The account's status after a failed adapter, fetch or store step: what it was, with the error. */
export function failedStatusOf(input: { provider: CloudProvider; account: string; code: string; message: string; prev: AccountStatus | undefined; syncedAt: string }): AccountStatus {
  const { prev } = input;
  return {
    provider: input.provider,
    account: input.account,
    syncedAt: input.syncedAt,
    ...(prev?.lastSuccessAt ? { lastSuccessAt: prev.lastSuccessAt } : {}),
    result: "failed",
    complete: false,
    error: { code: input.code, message: input.message },
    issues: [],
    counts: prev?.counts ?? { instances: 0, networks: 0, bound: 0 },
    ...(prev?.lastCompleteInstances !== undefined ? { lastCompleteInstances: prev.lastCompleteInstances } : {}),
    changes: { added: 0, updated: 0, deleted: 0 },
    removed: [],
    heldBack: [],
    stopped: prev?.stopped ?? [],
    relabelled: [],
  };
}
