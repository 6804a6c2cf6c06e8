/**
 * The inventory sync: every configured account fetched through its adapter, periodically
 * (intervalSeconds ± 10%, one sync at a time: SingleFlight) and on demand (`POST
 * /v1/inventory/sync`, which waits for a whole sync). Per account: fetch; a fetch that throws
 * (refused credentials, an exception) is recorded in the account's status and touches nothing
 * else; a listing is applied in named steps (apply.ts: write records, remove nodes, relabel,
 * status), each deciding in pure functions (listing.ts, revoke.ts, tag-labels.ts).
 *
 * After all accounts, overlapping network CIDRs (routes.ts) are logged as warnings when they change,
 * and `onSynced` gets the new plan (the site route advertiser publishes its gateway plan).
 */
import type { InventoryAdapter } from "@weft/cloud";
// The model alone: the package's index loads every cloud SDK (adapters.ts imports those on the first sync).
import { InventorySnapshot } from "@weft/cloud/model";
import type { CloudProvider, Identity, InventorySyncResult, InventoryView, NodeView } from "@weft/protocol";
import { SingleFlight } from "@weft/util";
import type { Logger } from "pino";
import { NotLeaderError } from "../errors.js";
import type { NodeRegistry } from "../nodes/registry.js";
import { defaultAdapterFactory, type AdapterFactory, type ClosableAdapter } from "./adapters.js";
import { applyListing } from "./apply.js";
import { accountLabel, type InventoryAccountConfig, type InventoryConfig } from "./config.js";
import { failedStatusOf } from "./listing.js";
import type { InventoryPlan, InventoryPlanner } from "./plan.js";
import { describeOverlap } from "./routes.js";
import type { AccountStatus, InventoryStore } from "./store.js";

export interface InventorySyncOptions {
  /** The stored inventory (`weft-inventory`; the join checks read and bind the same records). */
  store: InventoryStore;
  /** The inventory's view and gateway plan, computed after each sync. */
  planner: Pick<InventoryPlanner, "plan">;
  config: InventoryConfig;
  /** Nodes: listed for bindings, removed on evidence, relabelled from tags. */
  registry: Pick<NodeRegistry, "list" | "delete" | "updateNode">;
  allocateIdentity: (spiffeId: string) => Promise<Identity>;
  trustDomain: string;
  log: Logger;
  /** Default: the @weft/cloud adapters (adapters.ts). */
  adapters?: AdapterFactory;
  /** Longest a listed, unchanged instance's `seenAt` goes without a rewrite. Default 15 min. */
  seenRefreshMs?: number;
  /** Longest one account's fetch may take before it is abandoned (counted as failed). Default 10 min. */
  fetchTimeoutMs?: number;
  /**
   * Whether this controller may sync now (the leader; see leader/election.ts). A sync asked of
   * another controller is refused with NotLeaderError naming `leaderHint()`, once `untilLeading()`
   * (if given) resolved false: a controller about to lead answers instead. Default: always.
   */
  fence?: () => boolean;
  untilLeading?: () => Promise<boolean>;
  leaderHint?: () => string;
  /** Called after every sync with the inventory as it now is (errors are logged, not thrown). */
  onSynced?: (view: InventoryPlan) => Promise<void>;
  /** Told of each account's sync as it ends: its status and how long it took (metrics). */
  onAccountSynced?: (status: AccountStatus, seconds: number) => void;
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

export class InventorySync {
  private readonly adapters = new Map<InventoryAccountConfig, Promise<ClosableAdapter>>();
  private readonly runs = new SingleFlight(() => this.syncAll());
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
    this.store = o.store;
    this.factory = o.adapters ?? defaultAdapterFactory;
    this.seenRefreshMs = o.seenRefreshMs ?? 15 * 60_000;
    this.fetchTimeoutMs = o.fetchTimeoutMs ?? 10 * 60_000;
  }

  get accounts(): readonly InventoryAccountConfig[] {
    return this.o.config.accounts;
  }

  /** Periodic syncs: the first now (in the background), then every intervalSeconds ± 10%. No-op without accounts. */
  start(): void {
    if (this.accounts.length === 0 || this.stopped) return;
    clearTimeout(this.timer);
    this.o.log.info({ accounts: this.accounts.map(accountLabel), intervalSeconds: this.o.config.intervalSeconds }, "inventory sync started");
    this.schedule(0);
  }

  /** Stops the periodic syncs (this controller stepped down) and waits for a running one; start() resumes. */
  async pause(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.runs.idle();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort(new Error("controller stopping"));
    await this.runs.idle();
    for (const a of this.adapters.values()) await a.then((x) => x.close?.()).catch(() => {});
  }

  /**
   * Sync every account now and resolve with the per-account statuses. One sync at a time: asked
   * during a sync, it resolves with the next one (shared by everyone who asked meanwhile).
   */
  async sync(): Promise<InventorySyncResult> {
    const fence = this.o.fence;
    if (fence && !fence() && !((await this.o.untilLeading?.()) && fence())) {
      throw new NotLeaderError(`this controller is not the leader, which runs inventory syncs; ${this.o.leaderHint?.() ?? "retry in a few seconds"}`);
    }
    return this.runs.run();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.o.fence && !this.o.fence()) return; // stepped down: the next leader syncs
      this.runs
        .run()
        .catch((err: unknown) => {
          if (!(err instanceof NotLeaderError)) this.o.log.error({ err }, "inventory sync failed"); // else stepped down mid-sync
        })
        .finally(() => {
          if (this.o.fence && !this.o.fence()) return; // stepped down: the next leader syncs
          const base = this.o.config.intervalSeconds * 1000;
          this.schedule(base * (0.9 + Math.random() * 0.2));
        });
    }, delayMs);
    this.timer.unref();
  }

  private async syncAll(): Promise<InventorySyncResult> {
    const startedAt = new Date().toISOString();
    const nodes = await this.o.registry.list();
    const accounts = await Promise.all(
      this.accounts.map(async (a) => {
        const t0 = performance.now();
        const status = await this.syncAccount(a, nodes);
        this.o.onAccountSynced?.(status, (performance.now() - t0) / 1000);
        return status;
      }),
    );
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
      return await applyListing(
        { store: this.store, registry: this.o.registry, allocateIdentity: this.o.allocateIdentity, trustDomain: this.o.trustDomain, maxRemovalShare: this.o.config.maxRemovalShare, seenRefreshMs: this.seenRefreshMs },
        { config, account, snap: snapshot, nodes, log },
      );
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
    const status = failedStatusOf({ provider, account, code, message, prev, syncedAt: new Date().toISOString() });
    await this.store.putStatus(status).catch((e: unknown) => log.error({ err: e }, "cannot store the inventory status"));
    return status;
  }

  private async afterSync(): Promise<void> {
    const plan = await this.o.planner.plan();
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
