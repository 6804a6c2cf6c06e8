/**
 * Per-node policy distribution, the owner of `weft-node-policies`: keeps each
 * `weft-node-policies/<nodeId>` equal to what the compiler makes of the current
 * policies, identities and node records (labels, identity, workload identities),
 * for every node.
 *
 * It watches the policies and identities (KV watches: one snapshot, then every
 * change) into memory, reads the node records from the controller's shared mirror
 * (store/mirror.ts), and after a change waits for quiet (debounce, 50 ms; at most 250 ms
 * after the first change of a burst), recompiles from one snapshot (selectors
 * resolved once) only the nodes the changes can touch (PolicyDelta, incremental.ts:
 * a node whose record changed, and the nodes in the old or new destination of a rule
 * that resolves differently) and writes only the records that changed; a node that
 * no longer exists gets its key deleted. At start it reads the three
 * buckets and the published records, and publishes every difference (also keys
 * of nodes deleted while no controller ran). Passes run one at a time
 * (SingleFlight). A failed write is retried on the next pass (at the latest a
 * second later).
 *
 * Bounded messages: a record carries at most POLICY_CHUNK_ENTRIES entries; a larger
 * policy goes in chunk keys `<nodeId>.<i>` written first, then the record naming
 * their count and digest (the agent applies the chunks only when all carry it),
 * then chunks left over from a larger earlier policy are deleted. A policy that
 * needs more prefixes than the datapath's map holds is not written at all: the
 * node keeps its last good policy, `delivery(nodeId)` says `oversized` (REST
 * node view and node policy), the log says so once, and the
 * `weft_controller_policy_undelivered_total{reason="oversized"}` counter counts
 * it; every other node's record is written as usual in the same pass.
 */
import { createHash } from "node:crypto";
import type { KvWatchEntry } from "@nats-io/kv";
import {
  NodePolicyChunk,
  NodePolicyRecord,
  type NodeRecord,
  POLICY_CHUNK_ENTRIES,
  POLICY_MAP_CAPACITY,
  Policy,
  nodePolicyChunkKey,
  toCompactEntry,
  type CompactPolicyEntry,
  type Identity,
  type PolicyDelivery,
} from "@weft/protocol";
import { SingleFlight } from "@weft/util";
import type { Logger } from "pino";
import type { z } from "zod";
import { IdentityEntry, type IdentityStore } from "../identity/allocator.js";
import type { ControllerCounters } from "../metrics/counters.js";
import type { RecordStore } from "../store/kv.js";
import type { NodeMirror } from "../store/mirror.js";
import { localIdentitiesOf, type CompileTarget } from "./compile.js";
import { compileInputOf, PolicyDelta } from "./incremental.js";
import type { PolicyStore } from "./policies.js";

export type NodePolicyStore = RecordStore<typeof NodePolicyRecord>;
export type NodePolicyChunkStore = RecordStore<typeof NodePolicyChunk>;

export interface NodePolicyPublisherOptions {
  /** The stores, opened once by the controller (openStores); chunks share the node policies' bucket. */
  stores: { policies: PolicyStore; identities: IdentityStore; nodePolicies: NodePolicyStore; nodePolicyChunks: NodePolicyChunkStore };
  /** The node records (the controller's shared mirror; started and stopped by its owner). */
  nodes: NodeMirror;
  log: Logger;
  /** Undelivered policies are counted here. */
  counters?: ControllerCounters;
  /** Prefixes the datapath's policy map holds (default POLICY_MAP_CAPACITY; tests lower it). */
  mapCapacity?: number;
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
type Which = "policies" | "identities";

/** A node's record without compiledAt, as the unit of "changed" (the digest stands for the entries). */
function canonical(r: Omit<NodePolicyRecord, "compiledAt" | "entries">, digest: string): string {
  return JSON.stringify([r.nodeId, r.localIdentities, r.policies, r.defaultDeny, digest]);
}

/** sha256 (hex) of a compiled policy's entries, in order: what ties its chunks to their record. */
export function entriesDigest(entries: readonly CompactPolicyEntry[]): string {
  return createHash("sha256").update(JSON.stringify(entries)).digest("hex");
}

export class NodePolicyPublisher {
  private readonly policies = new Map<string, Policy>();
  private readonly identities = new Map<string, Identity>();
  /** What each node's key holds now (canonical form), as far as this publisher knows. */
  private readonly published = new Map<string, string>();
  /** Chunk keys each node has now (their count). */
  private readonly chunkCounts = new Map<string, number>();
  /** Nodes whose policy is not delivered (oversized), and since when. */
  private readonly undelivered = new Map<string, PolicyDelivery>();
  /** Map entries of each node's last compiled policy. */
  private readonly mapEntries = new Map<string, number>();
  private readonly watches: Stoppable[] = [];
  /** Which nodes' records a change can touch, from one pass to the next. */
  private readonly delta = new PolicyDelta();
  /** Nodes whose record was put or deleted since the last pass ("all": the first pass). */
  private changed: Set<string> | "all" = "all";
  private timer: NodeJS.Timeout | undefined;
  private firstChangeAt = 0;
  /** When the oldest change not yet compiled arrived (for the publish latency). */
  private pendingSince: number | undefined;
  /** One compile-and-publish pass at a time; a request during a pass runs one more after it. */
  private readonly flight = new SingleFlight(() => this.publishAll());
  private stopped = false;
  /** Whether node changes schedule a pass (after the first one; before it they are only noted). */
  private following = false;
  private unlistenNodes: (() => void) | undefined;
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
    // Node changes from now on: noted for the pass that follows (the first compiles every node).
    p.unlistenNodes = opts.nodes.listen((nodeId) => {
      p.noteNode(nodeId);
      if (p.following) p.schedule();
    });
    try {
      await p.load();
      await p.flight.run();
      await p.watch();
    } catch (err) {
      await p.stop(); // a publisher that failed to start must not go on hearing node changes
      throw err;
    }
    return p;
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.watches.splice(0)) w.stop();
    this.unlistenNodes?.();
    return this.flight.idle();
  }

  /** Whether `nodeId`'s compiled policy is delivered (undefined: not compiled yet). */
  delivery(nodeId: string): PolicyDelivery | undefined {
    const held = this.undelivered.get(nodeId);
    if (held) return held;
    const n = this.mapEntries.get(nodeId);
    return n === undefined ? undefined : { state: "ok", mapEntries: n, capacity: this.capacity };
  }

  private get capacity(): number {
    return this.opts.mapCapacity ?? POLICY_MAP_CAPACITY;
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
    const [policies, identities, published, chunkKeys] = await Promise.all([
      stores.policies.list(undefined, bad("policies")),
      stores.identities.list("spiffe.>", bad("identities")),
      // Records are single-token keys (node ids); an unreadable one is "unknown": the first pass rewrites it.
      stores.nodePolicies.list("*", (key) => this.published.set(key, "")),
      stores.nodePolicyChunks.keys("*.*"),
    ]);
    for (const p of policies) this.policies.set(p.key, p.value);
    for (const i of identities) this.identities.set(i.key, { id: i.value.id, spiffeId: i.value.spiffeId });
    for (const r of published) this.published.set(r.key, canonical(r.value, r.value.chunks?.digest ?? entriesDigest(r.value.entries)));
    for (const key of chunkKeys) {
      const [nodeId, index] = key.split(".");
      if (nodeId === undefined || !/^\d+$/.test(index ?? "")) continue;
      this.chunkCounts.set(nodeId, Math.max(this.chunkCounts.get(nodeId) ?? 0, Number(index) + 1));
      if (!this.published.has(nodeId)) this.published.set(nodeId, "");
    }
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
            else this.forgetRecord(which, e.key);
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
    this.following = true;
    if (this.changed !== "all" && this.changed.size > 0) this.schedule();
  }

  /** The node records, from the shared mirror. */
  private get nodes(): ReadonlyMap<string, NodeRecord> {
    return this.opts.nodes.entries;
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
    }
  }

  private forgetRecord(which: Which, key: string): void {
    this[which].delete(key);
  }

  /** A node record was put or deleted: the next pass compiles it (and what PolicyDelta finds it touches). */
  private noteNode(nodeId: string): void {
    if (this.changed !== "all") this.changed.add(nodeId);
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

  /** A node whose compiled policy does not fit: nothing is written, it keeps its last good policy. */
  private holdBack(nodeId: string, mapEntries: number): void {
    const was = this.undelivered.get(nodeId);
    if (was?.mapEntries === mapEntries) return;
    this.undelivered.set(nodeId, { state: "oversized", mapEntries, capacity: this.capacity, since: was?.since ?? new Date().toISOString() });
    if (!was) this.opts.counters?.policyUndelivered.inc({ reason: "oversized" });
    this.opts.log.warn(
      { node: nodeId, mapEntries, capacity: this.capacity },
      "node policy not delivered: it needs more datapath map entries than the map holds; the node keeps its last good policy (narrow the rules that target it)",
    );
  }

  /** Chunks (when any) first, then the record naming them, then chunks a larger earlier policy left. Resolves to the record's revision. */
  private async write(record: NodePolicyRecord, entries: readonly CompactPolicyEntry[], digest: string): Promise<number> {
    const { nodePolicies, nodePolicyChunks } = this.opts.stores;
    const count = record.chunks?.count ?? 0;
    for (let i = 0; i < count; i++) {
      const chunk: NodePolicyChunk = { version: 2, nodeId: record.nodeId, digest, index: i, entries: entries.slice(i * POLICY_CHUNK_ENTRIES, (i + 1) * POLICY_CHUNK_ENTRIES) };
      await nodePolicyChunks.put(nodePolicyChunkKey(record.nodeId, i), chunk);
      this.chunkCounts.set(record.nodeId, Math.max(this.chunkCounts.get(record.nodeId) ?? 0, i + 1));
    }
    const revision = await nodePolicies.put(record.nodeId, record);
    await this.dropChunks(record.nodeId, count);
    return revision;
  }

  /** Deletes a node's record and chunks. */
  private async remove(nodeId: string): Promise<void> {
    await this.opts.stores.nodePolicies.delete(nodeId);
    await this.dropChunks(nodeId, 0);
  }

  /** Deletes the chunk keys of `nodeId` from index `from` on. */
  private async dropChunks(nodeId: string, from: number): Promise<void> {
    const had = this.chunkCounts.get(nodeId) ?? 0;
    for (let i = from; i < had; i++) await this.opts.stores.nodePolicyChunks.delete(nodePolicyChunkKey(nodeId, i));
    if (from > 0) this.chunkCounts.set(nodeId, from);
    else this.chunkCounts.delete(nodeId);
  }

  /** The records of the nodes a change since the last pass can touch (PolicyDelta); writes only the differences. */
  private async publishAll(): Promise<void> {
    const started = Date.now();
    // Latency is measured from the first change of the burst this pass answers (or the pass itself at start).
    const since = this.pendingSince ?? started;
    this.pendingSince = undefined;
    const changed = this.changed;
    this.changed = new Set();
    const dirty = this.delta.update(compileInputOf(this.policies.values(), this.identities.values(), this.nodes.values()), this.nodes, changed);
    if (changed === "all") for (const nodeId of this.published.keys()) dirty.add(nodeId);
    const compiler = this.delta.compiler;
    const writes: Promise<void>[] = [];
    const failedNodes: string[] = [];
    const compiledAt = new Date().toISOString();
    for (const nodeId of dirty) {
      const node = this.nodes.get(nodeId);
      if (!node) {
        if (this.published.has(nodeId) || this.chunkCounts.has(nodeId)) writes.push(this.removeNode(nodeId, failedNodes));
        else this.forgetNode(nodeId);
        continue;
      }
      const target: CompileTarget = { identity: node.identity, workloads: node.workloads };
      const compiled = compiler.compile(target);
      this.mapEntries.set(node.nodeId, compiled.mapEntries);
      if (compiled.mapEntries > this.capacity) {
        this.holdBack(node.nodeId, compiled.mapEntries);
        continue;
      }
      if (this.undelivered.delete(node.nodeId)) this.opts.log.info({ node: node.nodeId, mapEntries: compiled.mapEntries, capacity: this.capacity }, "node policy fits the datapath again; publishing it");
      const entries = compiled.entries.map(toCompactEntry);
      const digest = entriesDigest(entries);
      const chunked = entries.length > POLICY_CHUNK_ENTRIES;
      const record: NodePolicyRecord = {
        version: 2,
        nodeId: node.nodeId,
        localIdentities: localIdentitiesOf(target),
        policies: compiled.policies,
        defaultDeny: compiled.defaultDeny,
        entries: chunked ? [] : entries,
        ...(chunked ? { chunks: { count: Math.ceil(entries.length / POLICY_CHUNK_ENTRIES), digest } } : {}),
        entryCount: entries.length,
        mapEntries: compiled.mapEntries,
        compiledAt,
      };
      const canon = canonical(record, digest);
      if (this.published.get(node.nodeId) === canon) continue;
      writes.push(
        this.write(record, chunked ? entries : [], digest).then(
          (revision) => {
            this.published.set(node.nodeId, canon);
            // Bytes: the record and, for a chunked policy, its chunks' entries; entries: the datapath map entries it compiles to.
            const bytes = JSON.stringify(record).length + (chunked ? JSON.stringify(entries).length : 0);
            this.opts.observe?.published(node.nodeId, bytes, compiled.mapEntries, (Date.now() - since) / 1000);
            this.opts.log.debug({ node: node.nodeId, revision, entries: entries.length, chunks: record.chunks?.count ?? 0, mapEntries: compiled.mapEntries }, "node policy published");
          },
          (err: unknown) => {
            failedNodes.push(node.nodeId);
            this.opts.log.warn({ node: node.nodeId, err }, "cannot publish node policy; retrying");
          },
        ),
      );
    }
    await Promise.all(writes);
    this.passes++;
    if (writes.length > 0) this.opts.log.info({ written: writes.length, compiled: dirty.size, nodes: this.nodes.size, ms: Date.now() - started }, "node policies published");
    if (failedNodes.length > 0 && !this.stopped) {
      // Compiled again on the next pass (the compiler says nothing changed for them).
      for (const nodeId of failedNodes) this.noteNode(nodeId);
      setTimeout(() => this.schedule(), 1000);
    }
  }

  /** Deletes the record and chunks of a node that is gone. */
  private removeNode(nodeId: string, failedNodes: string[]): Promise<void> {
    return this.remove(nodeId).then(
      () => {
        this.forgetNode(nodeId);
        this.opts.observe?.removed(nodeId);
        this.opts.log.info({ node: nodeId }, "node policy removed with its node");
      },
      (err: unknown) => {
        failedNodes.push(nodeId);
        this.opts.log.warn({ node: nodeId, err }, "cannot delete node policy; retrying");
      },
    );
  }

  private forgetNode(nodeId: string): void {
    this.published.delete(nodeId);
    this.undelivered.delete(nodeId);
    this.mapEntries.delete(nodeId);
  }
}

function safeJson(e: { json<T>(): T }): unknown {
  try {
    return e.json();
  } catch {
    return undefined;
  }
}
