/**
 * Per-node policy distribution, the owner of `weft-node-policies`: keeps each
 * `weft-node-policies/<nodeId>` equal to what the compiler makes of the current
 * policies, identities and node records (labels, identity, workload identities),
 * for every node.
 *
 * It watches those three buckets (KV watches: one snapshot, then every change)
 * into memory, and after a change waits for quiet (debounce, 50 ms; at most 250 ms
 * after the first change of a burst), recompiles every node from one snapshot
 * (selectors resolved once) and writes only the nodes whose record changed; a
 * node that no longer exists gets its key deleted. At start it reads the three
 * buckets and the published records, and publishes every difference (also keys
 * of nodes deleted while no controller ran). Passes run one at a time
 * (SingleFlight). A failed write is retried on the next pass (at the latest a
 * second later).
 */
import type { KvWatchEntry } from "@nats-io/kv";
import { NodePolicyRecord, NodeRecord, Policy, toCompactEntry, type Identity } from "@weft/protocol";
import { SingleFlight } from "@weft/util";
import type { Logger } from "pino";
import type { z } from "zod";
import { IdentityEntry, type IdentityStore } from "../identity/allocator.js";
import type { NodeStore } from "../nodes/registry.js";
import type { RecordStore } from "../store/kv.js";
import { localIdentitiesOf, PolicyCompiler, type CompileTarget } from "./compile.js";
import type { PolicyStore } from "./policies.js";

export type NodePolicyStore = RecordStore<typeof NodePolicyRecord>;

export interface NodePolicyPublisherOptions {
  /** The stores, opened once by the controller (openStores). */
  stores: { policies: PolicyStore; identities: IdentityStore; nodes: NodeStore; nodePolicies: NodePolicyStore };
  log: Logger;
  /** Quiet time after a change before recompiling. Default 50 ms. */
  debounceMs?: number;
  /** Longest a change waits for quiet before it is compiled anyway. Default 250 ms. */
  maxDelayMs?: number;
  /**
   * Told of each node record written (its JSON size, entry count, and seconds from the first
   * change that led to it) and of each removed (metrics).
   */
  observe?: { published(node: string, bytes: number, entries: number, seconds: number): void; removed(node: string): void };
}

type Stoppable = AsyncIterable<KvWatchEntry> & { stop(): void };
type Which = "policies" | "identities" | "nodes";

/** A node's record without compiledAt, as the unit of "changed". */
function canonical(r: Omit<NodePolicyRecord, "compiledAt">): string {
  return JSON.stringify([r.nodeId, r.localIdentities, r.policies, r.defaultDeny, r.entries]);
}

export class NodePolicyPublisher {
  private readonly policies = new Map<string, Policy>();
  private readonly identities = new Map<string, Identity>();
  private readonly nodes = new Map<string, NodeRecord>();
  /** What each node's key holds now (canonical form), as far as this publisher knows. */
  private readonly published = new Map<string, string>();
  private readonly watches: Stoppable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private firstChangeAt = 0;
  /** When the oldest change not yet compiled arrived (for the publish latency). */
  private pendingSince: number | undefined;
  /** One compile-and-publish pass at a time; a request during a pass runs one more after it. */
  private readonly flight = new SingleFlight(() => this.publishAll());
  private stopped = false;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  /** Passes completed, for tests and metrics. */
  passes = 0;

  private constructor(private readonly opts: NodePolicyPublisherOptions) {
    this.debounceMs = opts.debounceMs ?? 50;
    this.maxDelayMs = opts.maxDelayMs ?? 250;
  }

  /** Load everything, publish every difference, then follow changes. */
  static async start(opts: NodePolicyPublisherOptions): Promise<NodePolicyPublisher> {
    const p = new NodePolicyPublisher(opts);
    await p.load();
    await p.flight.run();
    await p.watch();
    return p;
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.watches.splice(0)) w.stop();
    return this.flight.idle();
  }

  /** Recompile now and wait until it is written (tests; after a bulk change). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flight.run();
  }

  private async load(): Promise<void> {
    const { stores } = this.opts;
    const bad = (bucket: Which) => (key: string, err: unknown) => this.opts.log.warn({ bucket, key, err }, "node policy publisher: skipping unreadable record");
    const [policies, identities, nodes, published] = await Promise.all([
      stores.policies.list(undefined, bad("policies")),
      stores.identities.list("spiffe.>", bad("identities")),
      stores.nodes.list(undefined, bad("nodes")),
      // An unreadable record is "unknown": the first pass rewrites it.
      stores.nodePolicies.list(undefined, (key) => this.published.set(key, "")),
    ]);
    for (const p of policies) this.policies.set(p.key, p.value);
    for (const i of identities) this.identities.set(i.key, { id: i.value.id, spiffeId: i.value.spiffeId });
    for (const n of nodes) this.nodes.set(n.key, n.value);
    for (const r of published) this.published.set(r.key, canonical(r.value));
  }

  private async watch(): Promise<void> {
    const { stores } = this.opts;
    const follow = async (which: Which, store: RecordStore<z.ZodType>, key = ">") => {
      const iter = (await store.kv.watch({ key })) as Stoppable;
      this.watches.push(iter);
      void (async () => {
        try {
          for await (const e of iter) {
            if (e.operation === "PUT") this.apply(which, e.key, safeJson(e));
            else this.remove(which, e.key);
            this.schedule();
          }
        } catch (err) {
          this.opts.log.error({ bucket: which, err }, "node policy publisher: watch failed");
        }
        if (!this.stopped) {
          // The ordered consumer behind watch() survives reconnects; if it ends anyway, start over.
          this.opts.log.warn({ bucket: which }, "node policy publisher: watch ended; restarting in 1 s");
          setTimeout(() => void (this.stopped ? undefined : follow(which, store, key).catch((err: unknown) => this.opts.log.error({ bucket: which, err }, "cannot restart watch"))), 1000);
        }
      })();
    };
    await follow("policies", stores.policies);
    await follow("identities", stores.identities, "spiffe.>");
    await follow("nodes", stores.nodes);
  }

  private apply(which: Which, key: string, value: unknown): void {
    const bad = (err: unknown) => this.opts.log.warn({ bucket: which, key, err }, "node policy publisher: skipping unreadable record");
    switch (which) {
      case "policies": {
        const r = Policy.safeParse(value);
        return r.success ? void this.policies.set(key, r.data) : bad(r.error.issues[0]?.message);
      }
      case "identities": {
        const r = IdentityEntry.safeParse(value);
        return r.success ? void this.identities.set(key, { id: r.data.id, spiffeId: r.data.spiffeId }) : bad(r.error.issues[0]?.message);
      }
      case "nodes": {
        const r = NodeRecord.safeParse(value);
        return r.success ? void this.nodes.set(key, r.data) : bad(r.error.issues[0]?.message);
      }
    }
  }

  private remove(which: Which, key: string): void {
    this[which].delete(key);
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (this.timer === undefined) this.firstChangeAt = now;
    this.pendingSince ??= now;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstChangeAt + this.maxDelayMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flight.run().catch((err: unknown) => this.opts.log.error({ err }, "node policy publisher: pass failed"));
    }, wait);
  }

  /** Every node's record from the in-memory snapshot; writes only the differences. */
  private async publishAll(): Promise<void> {
    const started = Date.now();
    // Latency is measured from the first change of the burst this pass answers (or the pass itself at start).
    const since = this.pendingSince ?? started;
    this.pendingSince = undefined;
    const identities = new Map<number, Identity>();
    for (const i of this.identities.values()) identities.set(i.id, i);
    for (const n of this.nodes.values()) for (const w of n.workloads ?? []) identities.set(w.identity.id, w.identity);
    const compiler = new PolicyCompiler({
      policies: [...this.policies.values()],
      identities: [...identities.values()],
      nodes: [...this.nodes.values()].map((n) => ({ nodeId: n.nodeId, identity: n.identity, labels: n.labels })),
    });
    const writes: Promise<void>[] = [];
    let failed = false;
    for (const node of this.nodes.values()) {
      const target: CompileTarget = { identity: node.identity, workloads: node.workloads };
      const compiled = compiler.compile(target);
      const record: NodePolicyRecord = {
        version: 1,
        nodeId: node.nodeId,
        localIdentities: localIdentitiesOf(target),
        policies: compiled.policies,
        defaultDeny: compiled.defaultDeny,
        entries: compiled.entries.map(toCompactEntry),
        compiledAt: new Date().toISOString(),
      };
      const canon = canonical(record);
      if (this.published.get(node.nodeId) === canon) continue;
      writes.push(
        this.opts.stores.nodePolicies.put(node.nodeId, record).then(
          (revision) => {
            this.published.set(node.nodeId, canon);
            this.opts.observe?.published(node.nodeId, JSON.stringify(record).length, record.entries.length, (Date.now() - since) / 1000);
            this.opts.log.debug({ node: node.nodeId, revision, entries: record.entries.length }, "node policy published");
          },
          (err: unknown) => {
            failed = true;
            this.opts.log.warn({ node: node.nodeId, err }, "cannot publish node policy; retrying");
          },
        ),
      );
    }
    for (const nodeId of [...this.published.keys()]) {
      if (this.nodes.has(nodeId)) continue;
      writes.push(
        this.opts.stores.nodePolicies.delete(nodeId).then(
          () => {
            this.published.delete(nodeId);
            this.opts.observe?.removed(nodeId);
            this.opts.log.info({ node: nodeId }, "node policy removed with its node");
          },
          (err: unknown) => {
            failed = true;
            this.opts.log.warn({ node: nodeId, err }, "cannot delete node policy; retrying");
          },
        ),
      );
    }
    await Promise.all(writes);
    this.passes++;
    if (writes.length > 0) this.opts.log.info({ written: writes.length, nodes: this.nodes.size, ms: Date.now() - started }, "node policies published");
    if (failed && !this.stopped) setTimeout(() => this.schedule(), 1000);
  }
}

function safeJson(e: { json<T>(): T }): unknown {
  try {
    return e.json();
  } catch {
    return undefined;
  }
}
