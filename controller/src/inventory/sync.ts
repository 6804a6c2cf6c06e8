/**
 * The inventory sync: every configured account fetched through its adapter, periodically
 * (intervalSeconds ± 10%, one sync at a time) and on demand (`POST /v1/inventory/sync`, which
 * waits for a whole sync). Per account:
 *
 * 1. fetch. A fetch that throws (refused credentials, an exception) is recorded in the account's
 *    status and touches nothing else.
 * 2. write the listed instances and networks whose record changed (a record's `seenAt` is
 *    refreshed at least every `seenRefreshMs`, so a quiet fleet costs no writes per cycle). Only a
 *    complete, plausible listing deletes records of instances it no longer has — and a record
 *    that a node is bound to is kept, marked `absentSince`, as the evidence for its removal.
 * 3. remove bound nodes on positive evidence (revoke.ts), through NodeRegistry.delete, which
 *    revokes the node's NATS credential first: it leaves every peer within seconds.
 * 4. bring every other bound node's labels and identity in line with its instance's tags
 *    (labels.ts): node record and peer record, compare-and-set, only on change.
 * 5. store the account's status: counts, changes, issues, removals done and held back.
 *
 * After all accounts, overlapping network CIDRs (routes.ts) are logged as warnings when they change,
 * and `onSynced` gets the new view (the site route advertiser publishes its gateway plan).
 */
import { InventorySnapshot, type InventoryAdapter } from "@weft/cloud";
import {
  CloudProvider,
  type Identity,
  type InventoryIssueRecord,
  type InventoryRemoval,
  type InventorySyncResult,
  type InventoryView,
  type NodeRecord,
  type NodeView,
} from "@weft/protocol";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { z } from "zod";
import { NotFoundError } from "../errors.js";
import type { NodeRegistry, NodeStore } from "../nodes/registry.js";
import { defaultAdapterFactory, type AdapterFactory, type ClosableAdapter } from "./adapters.js";
import { accountLabel, type InventoryAccountConfig, type InventoryConfig } from "./config.js";
import { desiredNode, sameLabels } from "./labels.js";
import { decideRemovals, type Binding } from "./revoke.js";
import { planGateways, type GatewayPlan, type ReservedRange } from "./gateways.js";
import { describeOverlap, siteRoutes } from "./routes.js";
import { keyOfInstance, keyOfNetwork, instanceKey, type AccountStatus, InventoryStore, type StoredInstance, type StoredNetwork } from "./store.js";

export interface InventorySyncOptions {
  /** The `weft-inventory` bucket. */
  kv: KV;
  config: InventoryConfig;
  registry: NodeRegistry;
  /** The nodes bucket, for compare-and-set updates of a node's labels and identity. */
  nodes: NodeStore;
  allocateIdentity: (spiffeId: string) => Promise<Identity>;
  trustDomain: string;
  log: Logger;
  /** Default: the @weft/cloud adapters (adapters.ts). */
  adapters?: AdapterFactory;
  /** Longest a listed, unchanged instance's `seenAt` goes without a rewrite. Default 15 min. */
  seenRefreshMs?: number;
  /** Longest one account's fetch may take before it is abandoned (counted as failed). Default 10 min. */
  fetchTimeoutMs?: number;
  /** The overlay's own ranges: site CIDRs overlapping them are never advertised. */
  reserved?: readonly ReservedRange[];
  /** Called after every sync with the inventory as it now is (errors are logged, not thrown). */
  onSynced?: (view: InventoryPlan) => Promise<void>;
}

/** The inventory view and which gateway node advertises which site routes. */
export interface InventoryPlan {
  view: InventoryView;
  gateways: GatewayPlan;
}

/** The instance a node record names (NodeRecord.instance, written by the join checks), read defensively. */
const InstanceRef = z.object({ provider: CloudProvider, account: z.string(), id: z.string() });
function instanceRefOf(node: NodeRecord | NodeView): z.infer<typeof InstanceRef> | undefined {
  const r = InstanceRef.safeParse((node as { instance?: unknown }).instance);
  return r.success ? r.data : undefined;
}

/** The account id a config names (the status key when no adapter could be built to say). */
function configuredAccountId(a: InventoryAccountConfig): string {
  switch (a.provider) {
    case "aws":
      return a.account;
    case "azure":
      return a.subscriptionId;
    case "gcp":
      return a.project;
    case "onprem":
      return a.file;
  }
}

/** Which stored instances a listing of `a` looks for: AWS lists only the configured regions. */
function coverageOf(a: InventoryAccountConfig): ((i: StoredInstance) => boolean) | undefined {
  return a.provider === "aws" ? (i) => a.regions.includes(i.region) : undefined;
}

export class InventorySync {
  private readonly adapters = new Map<InventoryAccountConfig, Promise<ClosableAdapter>>();
  private running: Promise<InventorySyncResult> | undefined;
  private queued: Promise<InventorySyncResult> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private lastOverlaps = "";
  private readonly factory: AdapterFactory;
  private readonly seenRefreshMs: number;
  private readonly fetchTimeoutMs: number;
  /** The stored inventory (the join checks read and bind the same records). */
  readonly store: InventoryStore;

  constructor(private readonly o: InventorySyncOptions) {
    this.store = new InventoryStore(o.kv);
    this.factory = o.adapters ?? defaultAdapterFactory;
    this.seenRefreshMs = o.seenRefreshMs ?? 15 * 60_000;
    this.fetchTimeoutMs = o.fetchTimeoutMs ?? 10 * 60_000;
  }

  get accounts(): readonly InventoryAccountConfig[] {
    return this.o.config.accounts;
  }

  /** Periodic syncs: the first now (in the background), then every intervalSeconds ± 10%. No-op without accounts. */
  start(): void {
    if (this.accounts.length === 0) return;
    this.o.log.info({ accounts: this.accounts.map(accountLabel), intervalSeconds: this.o.config.intervalSeconds }, "inventory sync started");
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort(new Error("controller stopping"));
    await Promise.allSettled([this.running, this.queued]);
    for (const a of this.adapters.values()) await a.then((x) => x.close?.()).catch(() => {});
  }

  /**
   * Sync every account now and resolve with the per-account statuses. One sync at a time: asked
   * during a sync, it resolves with the next one (shared by everyone who asked meanwhile).
   */
  sync(): Promise<InventorySyncResult> {
    if (!this.running) return this.begin();
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.begin();
      });
    return this.queued;
  }

  /** Everything the inventory holds, with site routes, their gateways and overlaps computed from it. */
  async view(): Promise<InventoryView> {
    return (await this.plan()).view;
  }

  /** The view, and the gateway plan it was computed with. */
  async plan(): Promise<InventoryPlan> {
    const [instances, networks, statuses, nodes] = await Promise.all([this.store.instances(), this.store.networks(), this.store.status(), this.o.registry.list()]);
    const sites = new Map(nodes.map((n) => [n.nodeId, n.site]));
    const { siteRoutes: routes, overlaps } = siteRoutes({ networks, instances, siteOf: (id) => sites.get(id) });
    const gateways = planGateways({ siteRoutes: routes, nodes, reserved: this.o.reserved ?? [] });
    const sortKey = (x: { provider: string; account: string; id: string }) => `${x.provider}\u0000${x.account}\u0000${x.id}`;
    const view: InventoryView = {
      instances: instances.sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
      networks: networks.sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
      statuses: statuses.sort((a, b) => `${a.provider}:${a.account}`.localeCompare(`${b.provider}:${b.account}`)),
      siteRoutes: gateways.siteRoutes,
      overlaps,
    };
    return { view, gateways };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sync()
        .catch((err: unknown) => this.o.log.error({ err }, "inventory sync failed"))
        .finally(() => {
          const base = this.o.config.intervalSeconds * 1000;
          this.schedule(base * (0.9 + Math.random() * 0.2));
        });
    }, delayMs);
    this.timer.unref();
  }

  private begin(): Promise<InventorySyncResult> {
    const run = this.syncAll().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async syncAll(): Promise<InventorySyncResult> {
    const startedAt = new Date().toISOString();
    const nodes = await this.o.registry.list();
    const accounts = await Promise.all(this.accounts.map((a) => this.syncAccount(a, nodes)));
    await this.afterSync().catch((err: unknown) => this.o.log.warn({ err }, "cannot compute network overlaps and site route gateways"));
    return { startedAt, finishedAt: new Date().toISOString(), accounts };
  }

  private adapterOf(a: InventoryAccountConfig): Promise<ClosableAdapter> {
    let got = this.adapters.get(a);
    if (!got) {
      got = this.factory(a, { log: this.o.log.child({ account: accountLabel(a) }) });
      this.adapters.set(a, got);
      // A factory failure (a missing CA file, an adapter this build lacks) is retried next cycle.
      got.catch(() => this.adapters.delete(a));
    }
    return got;
  }

  private async syncAccount(config: InventoryAccountConfig, nodes: NodeView[]): Promise<AccountStatus> {
    const log = this.o.log.child({ account: accountLabel(config) });
    let adapter: InventoryAdapter;
    try {
      adapter = await this.adapterOf(config);
    } catch (err) {
      return this.recordFailure(config.provider, configuredAccountId(config), "adapter", err, log);
    }
    const provider = adapter.provider;
    const account = adapter.account;
    let snapshot: InventorySnapshot;
    try {
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.fetchTimeoutMs)]);
      const parsed = InventorySnapshot.safeParse(await adapter.fetch(signal));
      if (!parsed.success) throw Object.assign(new Error(`the adapter returned a malformed snapshot: ${parsed.error.issues[0]?.message ?? ""}`), { code: "invalid_snapshot" });
      snapshot = parsed.data;
    } catch (err) {
      return this.recordFailure(provider, account, "fetch", err, log);
    }
    try {
      return await this.apply(config, account, snapshot, nodes, log);
    } catch (err) {
      return this.recordFailure(provider, account, "store", err, log);
    }
  }

  /** A failed fetch: status says why; stored instances and nodes are left as they are. */
  private async recordFailure(provider: CloudProvider, account: string, stage: string, err: unknown, log: Logger): Promise<AccountStatus> {
    const code = typeof (err as { code?: unknown }).code === "string" ? (err as { code: string }).code : "exception";
    const message = `${stage}: ${err instanceof Error ? err.message : String(err)}`;
    log.warn({ provider, code, err: message }, "inventory fetch failed; nothing stored or removed for this account");
    const prev = await this.store.accountStatus(provider, account).catch(() => undefined);
    const status: AccountStatus = {
      provider,
      account,
      syncedAt: new Date().toISOString(),
      ...(prev?.lastSuccessAt ? { lastSuccessAt: prev.lastSuccessAt } : {}),
      result: "failed",
      complete: false,
      error: { code, message },
      issues: [],
      counts: prev?.counts ?? { instances: 0, networks: 0, bound: 0 },
      ...(prev?.lastCompleteInstances !== undefined ? { lastCompleteInstances: prev.lastCompleteInstances } : {}),
      changes: { added: 0, updated: 0, deleted: 0 },
      removed: [],
      heldBack: [],
      stopped: prev?.stopped ?? [],
      relabelled: [],
    };
    await this.store.putStatus(status).catch((e: unknown) => log.error({ err: e }, "cannot store the inventory status"));
    return status;
  }

  private async apply(config: InventoryAccountConfig, account: string, snap: InventorySnapshot, nodes: NodeView[], log: Logger): Promise<AccountStatus> {
    const provider = config.provider;
    const store = this.store;
    const issues: InventoryIssueRecord[] = [...snap.issues];
    let complete = snap.complete;
    const seenAt = snap.fetchedAt;
    const listed = new Map<string, StoredInstance>();
    for (const i of snap.instances) {
      if (i.provider !== provider || i.account !== account) {
        issues.push({ scope: `instance ${i.id}`, code: "foreign_account", message: `listed under ${i.provider}:${i.account}, not ${provider}:${account}; skipped` });
        complete = false;
        continue;
      }
      listed.set(keyOfInstance(i), { ...i, seenAt });
    }
    const prev = await store.accountStatus(provider, account);
    const baseline = prev?.lastCompleteInstances;
    const storedEntries = await store.instanceEntries(provider, account);
    const stored = new Map(storedEntries.map((e) => [keyOfInstance(e.value), e]));

    // Bindings: the stored records' boundNode, and the instance each node record names.
    const nodesById = new Map(nodes.map((n) => [n.nodeId, n]));
    const bindings = new Map<string, Binding>();
    for (const e of storedEntries) {
      const b = e.value.boundNode;
      if (b !== undefined && nodesById.has(b)) bindings.set(b, { nodeId: b, key: keyOfInstance(e.value), instanceId: e.value.id });
    }
    for (const n of nodes) {
      const ref = instanceRefOf(n);
      if (ref && ref.provider === provider && ref.account === account && !bindings.has(n.nodeId)) {
        bindings.set(n.nodeId, { nodeId: n.nodeId, key: instanceKey(ref.provider, ref.account, ref.id), instanceId: ref.id });
      }
    }
    const boundKeys = new Set([...bindings.values()].map((b) => b.key));

    const decision = decideRemovals({
      outcome: "listed",
      complete,
      fetchedAt: snap.fetchedAt,
      listed,
      baseline,
      bindings: [...bindings.values()].map((b) => ({ ...b, name: nodesById.get(b.nodeId)?.name })),
      stored: new Map([...stored].map(([k, e]) => [k, e.value])),
      maxRemovalShare: this.o.config.maxRemovalShare,
      covers: coverageOf(config),
    });
    if (decision.suspicious) {
      issues.push({ scope: "account", code: "suspicious_empty", message: `listed no instances though the last complete listing had ${baseline}; nothing deleted or removed` });
    }
    const evidence = complete && !decision.suspicious;

    // Records: changed ones only; deletions only on a complete, plausible listing.
    const changes = { added: 0, updated: 0, deleted: 0 };
    const now = Date.now();
    const sameInstance = (a: StoredInstance, b: StoredInstance) => canonical({ ...a, seenAt: "" }) === canonical({ ...b, seenAt: "" }) && now - Date.parse(a.seenAt) < this.seenRefreshMs;
    // The listing above is the first read of each record; writes run a few at a time.
    await forEachLimit([...listed], 16, async ([key, inst]) => count(changes, await store.upsertInstance(inst, sameInstance, stored.get(key) ?? null)));
    if (evidence) {
      for (const [key, e] of stored) {
        if (listed.has(key)) continue;
        if (boundKeys.has(key) || (e.value.boundNode !== undefined && nodesById.has(e.value.boundNode))) {
          if (e.value.absentSince === undefined) await store.changeInstance(key, (cur) => (cur.absentSince ? undefined : { ...cur, absentSince: snap.fetchedAt }));
        } else if (await store.deleteInstance(key, e.revision)) {
          changes.deleted++;
        }
      }
    }
    const listedNetworks = new Map<string, StoredNetwork>();
    for (const n of snap.networks) if (n.provider === provider && n.account === account) listedNetworks.set(keyOfNetwork(n), { ...n, seenAt });
    const sameNetwork = (a: StoredNetwork, b: StoredNetwork) => canonical({ ...a, seenAt: "" }) === canonical({ ...b, seenAt: "" }) && now - Date.parse(a.seenAt) < this.seenRefreshMs;
    for (const n of listedNetworks.values()) count(changes, await store.upsertNetwork(n, sameNetwork));
    if (evidence) {
      for (const n of await store.networks(provider, account)) {
        const key = keyOfNetwork(n);
        if (listedNetworks.has(key)) continue;
        await store.deleteNetwork(key);
        changes.deleted++;
      }
    }

    // Removals, each logged with its evidence.
    const removed: InventoryRemoval[] = [];
    const heldBack = [...decision.heldBack];
    let heldBackReason = decision.heldBackReason;
    for (const r of decision.remove) {
      log.warn({ node: r.nodeId, provider, instance: r.instance, reason: r.reason, evidence: r.evidence }, "removing node: its cloud instance is gone");
      try {
        await this.o.registry.delete(r.nodeId);
        removed.push(r);
      } catch (err) {
        if (err instanceof NotFoundError) {
          removed.push(r); // deleted meanwhile (by an admin): the outcome is the same
        } else {
          log.error({ node: r.nodeId, err }, "cannot remove node; retrying next cycle");
          issues.push({ scope: `node ${r.nodeId}`, code: "remove_failed", message: err instanceof Error ? err.message : String(err) });
          heldBack.push(r);
          heldBackReason ??= "a removal failed; retried next cycle";
          continue;
        }
      }
      const key = bindings.get(r.nodeId)?.key;
      if (key === undefined) continue;
      if (r.reason === "absent") {
        const cur = await store.changeInstance(key, (c) => c);
        if (cur && !listed.has(key) && (cur.boundNode === undefined || cur.boundNode === r.nodeId)) await store.deleteInstance(key);
      } else {
        await store.unbind(key, r.nodeId);
      }
    }
    for (const h of heldBack) log.warn({ node: h.nodeId, provider, instance: h.instance, reason: h.reason, evidence: h.evidence, why: heldBackReason }, "node removal held back");
    for (const s of decision.stopped) log.info({ node: s.nodeId, provider, instance: s.instance, state: s.state }, "node's instance is stopped; kept");

    // Labels and identity of the bound nodes that stay.
    const relabelled: string[] = [];
    const gone = new Set(removed.map((r) => r.nodeId));
    for (const b of bindings.values()) {
      if (gone.has(b.nodeId)) continue;
      const inst = listed.get(b.key) ?? stored.get(b.key)?.value;
      if (!inst) continue;
      try {
        if (await this.applyLabels(b.nodeId, inst, issues, log)) relabelled.push(b.nodeId);
      } catch (err) {
        log.warn({ node: b.nodeId, err }, "cannot update the node's labels and identity from its instance");
        issues.push({ scope: `node ${b.nodeId}`, code: "relabel_failed", message: err instanceof Error ? err.message : String(err) });
      }
    }

    const status: AccountStatus = {
      provider,
      account,
      syncedAt: new Date().toISOString(),
      lastSuccessAt: snap.fetchedAt,
      result: complete ? "ok" : "partial",
      complete,
      issues,
      counts: { instances: listed.size, networks: listedNetworks.size, bound: bindings.size - removed.length },
      ...(evidence ? { lastCompleteInstances: listed.size } : baseline !== undefined ? { lastCompleteInstances: baseline } : {}),
      changes,
      removed,
      heldBack,
      ...(heldBack.length > 0 && heldBackReason ? { heldBackReason } : {}),
      stopped: decision.stopped,
      relabelled,
    };
    await store.putStatus(status);
    const summary = { provider, complete, instances: listed.size, ...changes, removed: removed.length, heldBack: heldBack.length, issues: issues.length };
    if (changes.added + changes.updated + changes.deleted + removed.length + heldBack.length + issues.length > 0) log.info(summary, "inventory synced");
    else log.debug(summary, "inventory synced; no change");
    return status;
  }

  /** Bring one node's labels and identity (node record, then peer record) in line with its instance. True when either changed. */
  private async applyLabels(nodeId: string, inst: StoredInstance, issues: InventoryIssueRecord[], log: Logger): Promise<boolean> {
    let identity: Identity | undefined;
    let changed = false;
    for (let attempt = 0; ; attempt++) {
      if (attempt >= 20) throw new Error(`node ${nodeId}: record update kept losing races`);
      const got = await this.o.nodes.get(nodeId);
      if (!got) return false;
      const node = got.value;
      const want = desiredNode(node, inst, this.o.trustDomain);
      if (attempt === 0) for (const p of want.problems) issues.push({ scope: `node ${nodeId}`, code: "tags", message: `instance ${inst.id}: ${p}` });
      identity = node.identity?.spiffeId === want.spiffeId ? node.identity : await this.o.allocateIdentity(want.spiffeId);
      if (sameLabels(node.labels, want.labels) && node.identity?.id === identity.id && node.identity.spiffeId === identity.spiffeId) break;
      if ((await this.o.nodes.update(nodeId, { ...node, labels: want.labels, identity }, got.revision)) === false) continue;
      changed = true;
      log.info({ node: nodeId, instance: inst.id, identity: identity.spiffeId, identitySource: want.identitySource }, "node's labels or identity follow its instance's tags");
      break;
    }
    const id = identity;
    const peer = await this.o.registry.updatePeer(nodeId, (p) => (p.identity?.id === id.id && p.identity.spiffeId === id.spiffeId ? undefined : { ...p, identity: id }));
    return changed || peer === "updated";
  }

  private async afterSync(): Promise<void> {
    const plan = await this.plan();
    this.reportOverlaps(plan.view.overlaps);
    await this.o.onSynced?.(plan);
  }

  private reportOverlaps(overlaps: InventoryView["overlaps"]): void {
    const text = overlaps.map(describeOverlap).join("\n");
    if (text === this.lastOverlaps) return;
    this.lastOverlaps = text;
    for (const o of overlaps) this.o.log.warn({ a: o.a, b: o.b, sameSite: o.sameSite }, `overlapping network CIDRs, not merged: ${describeOverlap(o)}`);
  }
}

function count(changes: AccountStatus["changes"], r: "added" | "updated" | "unchanged"): void {
  if (r !== "unchanged") changes[r]++;
}

/** JSON with object keys sorted: equal records compare equal whatever order their fields came in. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
