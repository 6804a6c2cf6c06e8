/**
 * Per-node service distribution, the owner of `weft-node-services`: keeps each
 * `weft-node-services/<nodeId>` equal to what the services compiler makes of the current
 * services, node records, policies, identities and backend health, for every node.
 *
 * Like the node policy publisher: the four buckets are mirrored in memory (BucketMirror; the node
 * records through the controller's shared mirror), and
 * after a change (or a health verdict from ServiceHealth) a pass waits for quiet (debounce 10 ms,
 * at most 50 ms after the first change of a burst: an unhealthy backend must leave every client's
 * table fast), compiles from one snapshot the nodes the changes can touch (ServicesDelta,
 * incremental.ts: every node when a service, backend or health verdict changed, else the changed
 * nodes and the holders of identities whose reach to a backend moved) and writes only the records
 * that changed; a deleted node's key is deleted. Passes run one at a time (SingleFlight); a failed write is
 * retried on a pass a second later.
 *
 * Several controllers: every one mirrors and compiles (the API's views and ServiceHealth read the
 * compilation), only the leader writes (`writes`, the leader fence). A controller that becomes
 * leader reads what is stored again (`resync`) before its first pass, so it writes exactly what
 * differs from the previous leader's records.
 */
import { NodeServicesRecord, Policy, ServiceRecord, type Identity, type NodeRecord } from "@weft/protocol";
import { SingleFlight } from "@weft/util";
import type { Logger } from "pino";
import { IdentityEntry, type IdentityStore } from "../identity/allocator.js";
import { PolicyCompiler } from "../policy/compile.js";
import type { PolicyStore } from "../policy/policies.js";
import type { RecordStore } from "../store/kv.js";
import { BucketMirror, type NodeMirror } from "../store/mirror.js";
import { ServicesCompiler, type CompiledNodeServices } from "./compile.js";
import { ServicesDelta } from "./incremental.js";
import { PolicyReach } from "./reach.js";
import type { ResolvedBackend } from "./resolve.js";

export type ServiceStore = RecordStore<typeof ServiceRecord>;
export type NodeServicesStore = RecordStore<typeof NodeServicesRecord>;

export interface NodeServicesPublisherOptions {
  stores: { services: ServiceStore; policies: PolicyStore; identities: IdentityStore; nodeServices: NodeServicesStore };
  /** The node records (the controller's shared mirror; started and stopped by its owner). */
  nodes: NodeMirror;
  /** Whether a backend takes new connections (ServiceHealth.healthy). */
  healthy: (service: string, address: string, nodeId: string, checked: boolean) => boolean;
  zone: string;
  serviceCidr: string;
  log: Logger;
  /** Whether this controller may write now (the leader fence); absent: always. */
  writes?: () => boolean;
  debounceMs?: number;
  maxDelayMs?: number;
}

function canonical(r: CompiledNodeServices): string {
  return JSON.stringify(r);
}

export class NodeServicesPublisher {
  readonly #o: NodeServicesPublisherOptions;
  #services!: BucketMirror<typeof ServiceRecord>;
  #nodes!: NodeMirror;
  #unlistenNodes: (() => void) | undefined;
  #policies!: BucketMirror<typeof Policy>;
  #identities!: BucketMirror<typeof IdentityEntry>;
  readonly #published = new Map<string, string>();
  /** Which nodes' records a change can touch, from one pass to the next. */
  readonly #delta: ServicesDelta;
  /** Nodes whose record was put or deleted since the last pass ("all": compile every node). */
  #changed: Set<string> | "all" = "all";
  readonly #flight = new SingleFlight(() => this.#publishAll());
  #timer: NodeJS.Timeout | undefined;
  #firstChangeAt = 0;
  #stopped = false;
  #started = false;
  /** Nodes hosting a backend, as of the last pass. */
  #backendNodes = new Set<string>();
  /** Passes completed and the last pass's duration, for tests and logs. */
  passes = 0;
  lastPassMs = 0;

  private constructor(o: NodeServicesPublisherOptions) {
    this.#o = o;
    this.#delta = new ServicesDelta({
      healthy: (service: string, b: ResolvedBackend, checked: boolean) => o.healthy(service, b.address, b.nodeId, checked),
      zone: o.zone,
      serviceCidr: o.serviceCidr,
    });
  }

  static async start(o: NodeServicesPublisherOptions): Promise<NodeServicesPublisher> {
    const p = new NodeServicesPublisher(o);
    const onChange = () => p.schedule();
    const mirror = <S extends Parameters<typeof BucketMirror.start>[1]>(store: RecordStore<S>, schema: S, bucket: string, key?: string) =>
      BucketMirror.start(store, schema, { bucket, log: o.log, onChange, ...(key ? { key } : {}) });
    const { stores } = o;
    p.#nodes = o.nodes;
    p.#unlistenNodes = o.nodes.listen((nodeId) => {
      p.#noteNode(nodeId);
      p.schedule();
    });
    try {
      [p.#services, p.#policies, p.#identities] = await Promise.all([
        mirror(stores.services, ServiceRecord, "weft-services"),
        mirror(stores.policies, Policy, "weft-policies"),
        mirror(stores.identities, IdentityEntry, "weft-identities", "spiffe.>"),
      ]);
      await p.#readPublished();
      p.#started = true;
      await p.#flight.run();
    } catch (err) {
      await p.stop(); // a publisher that failed to start must not go on hearing node changes
      throw err;
    }
    return p;
  }

  /** Reads back what is stored (a new leader: the previous one wrote it), then runs a pass. */
  async resync(): Promise<void> {
    await this.#flight.idle();
    await this.#readPublished();
    this.#changed = "all";
    await this.#flight.run();
  }

  async #readPublished(): Promise<void> {
    this.#published.clear();
    for (const r of await this.#o.stores.nodeServices.list(undefined, (key) => this.#published.set(key, ""))) {
      const { compiledAt: _at, ...rest } = r.value;
      this.#published.set(r.key, canonical(rest));
    }
  }

  /** A node record was put or deleted (or its write failed): the next pass compiles it. */
  #noteNode(nodeId: string): void {
    if (this.#changed !== "all") this.#changed.add(nodeId);
  }

  stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const m of [this.#services, this.#policies, this.#identities]) m?.stop();
    this.#unlistenNodes?.();
    return this.#flight.idle();
  }

  /** Recompile now and wait until written (tests, REST after an apply). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#flight.run();
  }

  /** A change happened (a bucket, a health verdict): compile after a short quiet time. */
  schedule(): void {
    if (this.#stopped || !this.#started) return;
    const now = Date.now();
    if (this.#timer === undefined) this.#firstChangeAt = now;
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#o.debounceMs ?? 10, this.#firstChangeAt + (this.#o.maxDelayMs ?? 50) - now));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flight.run().catch((err: unknown) => this.#o.log.error({ err }, "node services publisher: pass failed"));
    }, wait);
  }

  /** The node records as last seen. */
  nodes(): NodeRecord[] {
    return [...this.#nodes.entries.values()];
  }

  /** Addresses a node hosts (overlay and workloads), or undefined for an unknown node. */
  hostedBy(nodeId: string): ReadonlySet<string> | undefined {
    const n = this.#nodes.entries.get(nodeId);
    return n ? new Set([n.overlayAddress, ...(n.workloads ?? []).map((w) => w.address)]) : undefined;
  }

  /** Nodes hosting at least one backend of some service (as of the last pass). */
  backendNodes(): ReadonlySet<string> {
    return this.#backendNodes;
  }

  /** A compiler over the current snapshot. */
  compiler(): ServicesCompiler {
    const identities = new Map<number, Identity>();
    for (const i of this.#identities.entries.values()) identities.set(i.id, { id: i.id, spiffeId: i.spiffeId });
    const nodes = [...this.#nodes.entries.values()];
    for (const n of nodes) for (const w of n.workloads ?? []) identities.set(w.identity.id, w.identity);
    const policy = new PolicyCompiler({
      policies: [...this.#policies.entries.values()],
      identities: [...identities.values()],
      nodes: nodes.map((n) => ({ nodeId: n.nodeId, identity: n.identity, labels: n.labels })),
    });
    return new ServicesCompiler({
      services: [...this.#services.entries.values()],
      nodes,
      reach: new PolicyReach(policy),
      healthy: (service: string, b: ResolvedBackend, checked: boolean) => this.#o.healthy(service, b.address, b.nodeId, checked),
      zone: this.#o.zone,
      serviceCidr: this.#o.serviceCidr,
    });
  }

  async #publishAll(): Promise<void> {
    const started = Date.now();
    const changed = this.#changed;
    this.#changed = new Set();
    const { compiler, dirty } = this.#delta.update(
      { services: this.#services.entries.values(), nodes: this.#nodes.entries, policies: this.#policies.entries.values(), identities: this.#identities.entries.values() },
      changed,
    );
    this.#backendNodes = new Set([...compiler.backends().values()].flatMap((list) => list.map((b) => b.nodeId)));
    if (this.#o.writes && !this.#o.writes()) {
      // A follower: the leader writes. Whoever writes next compiles every node.
      this.#changed = "all";
      return;
    }
    if (changed === "all") for (const nodeId of this.#published.keys()) dirty.add(nodeId);
    const writes: Promise<void>[] = [];
    const failed: string[] = [];
    for (const nodeId of dirty) {
      const node = this.#nodes.entries.get(nodeId);
      if (!node) {
        if (!this.#published.has(nodeId)) continue;
        writes.push(
          this.#o.stores.nodeServices.delete(nodeId).then(
            () => void this.#published.delete(nodeId),
            (err: unknown) => {
              failed.push(nodeId);
              this.#o.log.warn({ node: nodeId, err }, "cannot delete node services; retrying");
            },
          ),
        );
        continue;
      }
      const compiled = compiler.compile(node);
      const canon = canonical(compiled);
      if (this.#published.get(node.nodeId) === canon) continue;
      const record: NodeServicesRecord = { ...compiled, compiledAt: new Date().toISOString() };
      writes.push(
        this.#o.stores.nodeServices.put(node.nodeId, record).then(
          (revision) => {
            this.#published.set(node.nodeId, canon);
            this.#o.log.debug({ node: node.nodeId, revision, services: record.services.length, checks: record.checks.length }, "node services published");
          },
          (err: unknown) => {
            failed.push(node.nodeId);
            this.#o.log.warn({ node: node.nodeId, err }, "cannot publish node services; retrying");
          },
        ),
      );
    }
    await Promise.all(writes);
    this.passes++;
    this.lastPassMs = Date.now() - started;
    if (writes.length > 0) this.#o.log.info({ written: writes.length, compiled: dirty.size, nodes: this.#nodes.entries.size, ms: this.lastPassMs }, "node services published");
    if (failed.length > 0 && !this.#stopped) {
      // Compiled again on a later pass (nothing else may say they changed).
      for (const nodeId of failed) this.#noteNode(nodeId);
      setTimeout(() => this.schedule(), 1000);
    }
  }
}
