/**
 * Applying one account's listing, as named steps (each decision is a pure function of
 * listing.ts, revoke.ts or tag-labels.ts; these functions do the I/O):
 *
 * 1. `writeRecords`: the listed instances and networks whose record changed; on a complete,
 *    plausible listing, deletes of what it no longer has (bound records kept, marked `absentSince`);
 * 2. `removeNodes`: bound nodes removed on positive evidence, through NodeRegistry.delete (which
 *    revokes the node's NATS credential first), and their instance records settled;
 * 3. `relabelNodes`: every other bound node's labels and identity brought in line with its
 *    instance's tags, through NodeRegistry.updateNode (node and peer record, only on change);
 * 4. the account's status, stored.
 */
import type { InventorySnapshot } from "@weft/cloud";
import type { Identity, InventoryIssueRecord, InventoryRemoval, NodeView } from "@weft/protocol";
import { forEachLimit } from "@weft/util";
import type { Logger } from "pino";
import { NotFoundError } from "../errors.js";
import type { NodeRegistry } from "../nodes/registry.js";
import type { Versioned } from "../store/kv.js";
import type { InventoryAccountConfig } from "./config.js";
import { acceptListing, accountStatusOf, bindingsOf, planRecordCleanup, sameRecord, staleNetworks, type AcceptedListing } from "./listing.js";
import { decideRemovals, type Binding, type RemovalDecision } from "./revoke.js";
import { keyOfInstance, type AccountStatus, type InventoryStore, type StoredInstance } from "./store.js";
import { desiredNode, relabelledNode } from "./tag-labels.js";

export interface ApplyDeps {
  store: InventoryStore;
  registry: Pick<NodeRegistry, "delete" | "updateNode">;
  allocateIdentity: (spiffeId: string) => Promise<Identity>;
  trustDomain: string;
  maxRemovalShare: number;
  /** Longest a listed, unchanged record's `seenAt` goes without a rewrite. */
  seenRefreshMs: number;
}

/** Instance records written at once. */
const WRITES_IN_FLIGHT = 16;

/** Which stored instances a listing of `a` looks for: AWS lists only the configured regions. */
function coverageOf(a: InventoryAccountConfig): ((i: StoredInstance) => boolean) | undefined {
  return a.provider === "aws" ? (i) => a.regions.includes(i.region) : undefined;
}

/** Apply the listing `snap` of one account; resolves with the account's stored status. */
export async function applyListing(deps: ApplyDeps, input: { config: InventoryAccountConfig; account: string; snap: InventorySnapshot; nodes: NodeView[]; log: Logger }): Promise<AccountStatus> {
  const { config, account, snap, nodes, log } = input;
  const provider = config.provider;
  const { store } = deps;
  const listing = acceptListing(snap, provider, account);
  const prev = await store.accountStatus(provider, account);
  const baseline = prev?.lastCompleteInstances;
  const storedEntries = await store.instanceEntries(provider, account);
  const stored = new Map(storedEntries.map((e) => [keyOfInstance(e.value), e]));
  const bindings = bindingsOf({ stored: storedEntries, nodes, provider, account });
  const names = new Map(nodes.map((n) => [n.nodeId, n.name]));

  const decision = decideRemovals({
    outcome: "listed",
    complete: listing.complete,
    fetchedAt: snap.fetchedAt,
    listed: listing.instances,
    baseline,
    bindings: [...bindings.values()].map((b) => ({ ...b, name: names.get(b.nodeId) })),
    stored: new Map([...stored].map(([k, e]) => [k, e.value])),
    maxRemovalShare: deps.maxRemovalShare,
    covers: coverageOf(config),
  });
  const issues: InventoryIssueRecord[] = [];
  if (decision.suspicious) {
    issues.push({ scope: "account", code: "suspicious_empty", message: `listed no instances though the last complete listing had ${baseline}; nothing deleted or removed` });
  }
  const evidence = listing.complete && !decision.suspicious;

  const changes = await writeRecords(deps, { listing, stored, bindings, nodeExists: (id) => names.has(id), evidence, fetchedAt: snap.fetchedAt, provider, account });
  const removal = await removeNodes(deps, { decision, bindings, listed: listing.instances, provider, log });
  issues.push(...removal.issues);
  const gone = new Set(removal.removed.map((r) => r.nodeId));
  const relabel = await relabelNodes(deps, { bindings: [...bindings.values()].filter((b) => !gone.has(b.nodeId)), instanceAt: (key) => listing.instances.get(key) ?? stored.get(key)?.value, log });
  issues.push(...relabel.issues);

  const status = accountStatusOf({
    provider,
    account,
    fetchedAt: snap.fetchedAt,
    listing,
    issues,
    evidence,
    baseline,
    bound: bindings.size,
    changes,
    removed: removal.removed,
    heldBack: removal.heldBack,
    heldBackReason: removal.heldBackReason,
    stopped: decision.stopped,
    relabelled: relabel.relabelled,
    syncedAt: new Date().toISOString(),
  });
  await store.putStatus(status);
  const summary = { provider, complete: listing.complete, instances: listing.instances.size, ...changes, removed: status.removed.length, heldBack: status.heldBack.length, issues: status.issues.length };
  if (changes.added + changes.updated + changes.deleted + status.removed.length + status.heldBack.length + status.issues.length > 0) log.info(summary, "inventory synced");
  else log.debug(summary, "inventory synced; no change");
  return status;
}

/**
 * Step 1: write the records that changed. The caller's listing of the stored records is the first
 * read of each; writes run a few at a time. Deletions only with `evidence`.
 */
export async function writeRecords(
  deps: Pick<ApplyDeps, "store" | "seenRefreshMs">,
  input: {
    listing: AcceptedListing;
    stored: ReadonlyMap<string, Versioned<StoredInstance>>;
    bindings: ReadonlyMap<string, Binding>;
    nodeExists: (nodeId: string) => boolean;
    evidence: boolean;
    fetchedAt: string;
    provider: StoredInstance["provider"];
    account: string;
  },
): Promise<AccountStatus["changes"]> {
  const { store } = deps;
  const { listing, stored } = input;
  const changes = { added: 0, updated: 0, deleted: 0 };
  const count = (r: "added" | "updated" | "unchanged") => {
    if (r !== "unchanged") changes[r]++;
  };
  const now = Date.now();
  await forEachLimit([...listing.instances], WRITES_IN_FLIGHT, async ([key, inst]) => count(await store.upsertInstance(inst, sameRecord(now, deps.seenRefreshMs), stored.get(key) ?? null)));
  if (input.evidence) {
    const boundKeys = new Set([...input.bindings.values()].map((b) => b.key));
    const cleanup = planRecordCleanup({ stored, listed: listing.instances, boundKeys, nodeExists: input.nodeExists });
    for (const key of cleanup.markAbsent) await store.changeInstance(key, (cur) => (cur.absentSince ? undefined : { ...cur, absentSince: input.fetchedAt }));
    for (const { key, revision } of cleanup.remove) if (await store.deleteInstance(key, revision)) changes.deleted++;
  }
  for (const n of listing.networks.values()) count(await store.upsertNetwork(n, sameRecord(now, deps.seenRefreshMs)));
  if (input.evidence) {
    for (const key of staleNetworks(await store.networks(input.provider, input.account), listing.networks)) {
      await store.deleteNetwork(key);
      changes.deleted++;
    }
  }
  return changes;
}

export interface RemovalOutcome {
  removed: InventoryRemoval[];
  heldBack: InventoryRemoval[];
  heldBackReason: string | undefined;
  issues: InventoryIssueRecord[];
}

/**
 * Step 2: remove the nodes the decision names, each logged with its evidence. A removal that fails
 * is held back for the next cycle; a node deleted meanwhile counts as removed. Then the instance
 * record: an absent instance's record goes, a terminated one's binding.
 */
export async function removeNodes(
  deps: Pick<ApplyDeps, "store" | "registry">,
  input: { decision: RemovalDecision; bindings: ReadonlyMap<string, Binding>; listed: ReadonlyMap<string, StoredInstance>; provider: string; log: Logger },
): Promise<RemovalOutcome> {
  const { decision, provider, log } = input;
  const out: RemovalOutcome = { removed: [], heldBack: [...decision.heldBack], heldBackReason: decision.heldBackReason, issues: [] };
  for (const r of decision.remove) {
    log.warn({ node: r.nodeId, provider, instance: r.instance, reason: r.reason, evidence: r.evidence }, "removing node: its cloud instance is gone");
    try {
      await deps.registry.delete(r.nodeId);
      out.removed.push(r);
    } catch (err) {
      if (err instanceof NotFoundError) {
        out.removed.push(r); // deleted meanwhile (by an admin): the outcome is the same
      } else {
        log.error({ node: r.nodeId, err }, "cannot remove node; retrying next cycle");
        out.issues.push({ scope: `node ${r.nodeId}`, code: "remove_failed", message: err instanceof Error ? err.message : String(err) });
        out.heldBack.push(r);
        out.heldBackReason ??= "a removal failed; retried next cycle";
        continue;
      }
    }
    const key = input.bindings.get(r.nodeId)?.key;
    if (key === undefined) continue;
    if (r.reason === "absent") {
      const cur = await deps.store.changeInstance(key, (c) => c);
      if (cur && !input.listed.has(key) && (cur.boundNode === undefined || cur.boundNode === r.nodeId)) await deps.store.deleteInstance(key);
    } else {
      await deps.store.unbind(key, r.nodeId);
    }
  }
  for (const h of out.heldBack) log.warn({ node: h.nodeId, provider, instance: h.instance, reason: h.reason, evidence: h.evidence, why: out.heldBackReason }, "node removal held back");
  for (const s of decision.stopped) log.info({ node: s.nodeId, provider, instance: s.instance, state: s.state }, "node's instance is stopped; kept");
  return out;
}

/**
 * Step 3: bring each bound node's labels and identity in line with its instance (tag-labels.ts),
 * through the registry. Tags that cannot become labels are reported once per node.
 */
export async function relabelNodes(
  deps: Pick<ApplyDeps, "registry" | "allocateIdentity" | "trustDomain">,
  input: { bindings: readonly Binding[]; instanceAt: (key: string) => StoredInstance | undefined; log: Logger },
): Promise<{ relabelled: string[]; issues: InventoryIssueRecord[] }> {
  const relabelled: string[] = [];
  const issues: InventoryIssueRecord[] = [];
  for (const b of input.bindings) {
    const inst = input.instanceAt(b.key);
    if (!inst) continue;
    let reported = false;
    let source = "";
    try {
      const got = await deps.registry.updateNode(b.nodeId, async (node) => {
        const want = desiredNode(node, inst, deps.trustDomain);
        if (!reported) for (const p of want.problems) issues.push({ scope: `node ${b.nodeId}`, code: "tags", message: `instance ${inst.id}: ${p}` });
        reported = true;
        source = want.identitySource;
        const identity = node.identity?.spiffeId === want.spiffeId ? node.identity : await deps.allocateIdentity(want.spiffeId);
        return relabelledNode(node, want.labels, identity);
      });
      if (got.outcome === "updated") {
        relabelled.push(b.nodeId);
        input.log.info({ node: b.nodeId, instance: inst.id, identity: got.node.identity?.spiffeId, identitySource: source }, "node's labels or identity follow its instance's tags");
      }
    } catch (err) {
      input.log.warn({ node: b.nodeId, err }, "cannot update the node's labels and identity from its instance");
      issues.push({ scope: `node ${b.nodeId}`, code: "relabel_failed", message: err instanceof Error ? err.message : String(err) });
    }
  }
  return { relabelled, issues };
}
