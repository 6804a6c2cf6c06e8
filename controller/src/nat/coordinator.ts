/**
 * The path coordinator: the one writer of `weft-node-paths`. Every tick (default 500 ms), over
 * the nodes that can need traversal (no public endpoint) and the relays only (NodeCache keeps
 * them by key; a fleet where every node is public costs nothing per tick), it
 *   1. records each NAT'd node's reflexive endpoints and NAT mapping, as public peers' heartbeats
 *      show them (reflexive.ts), in its node record through the registry (only when they change);
 *   2. plans every pair that needs traversal (plan.ts): relay sessions, hole-punching rounds;
 *   3. writes each node's record when it says something new (both sides of a new round within
 *      the same few milliseconds: the "at the same time" of coordinated punching), and deletes
 *      the records of nodes that have none any more.
 * At start it reads the records back, so a restarted controller keeps relay ports and continues
 * round numbers (agents act only on a round higher than the last they saw).
 */
import { RELAY_LABEL, type Heartbeat, type NodePathsRecord, type NodeRecord } from "@weft/protocol";
import { SingleFlight } from "@weft/util";
import type { Logger } from "pino";
import { tagLabelKey } from "../inventory/tag-labels.js";
import type { Liveness } from "../nodes/liveness.js";
import type { NodeRegistry } from "../nodes/registry.js";
import { canonicalJson } from "../store/canonical.js";
import type { RecordStore } from "../store/kv.js";
import type { NodeCache } from "./node-cache.js";
import { pairKey, planPaths, type NodePaths, type PairState, type PathConfig, type PathNode } from "./plan.js";
import { reflexiveEndpoints, withReflexive } from "./reflexive.js";

const RELAY_KEYS = [RELAY_LABEL, ...["weft:relay", "weft-relay", "weft_relay"].map(tagLabelKey)];

/** Whether a node's labels (or its instance's tags) make it a relay. */
export function isRelay(labels: Record<string, string>): boolean {
  return RELAY_KEYS.some((k) => labels[k]?.toLowerCase() === "true");
}

export interface PathCoordinatorOptions {
  nodes: NodeCache;
  store: RecordStore<typeof NodePathsRecord>;
  registry: Pick<NodeRegistry, "updateNode">;
  liveness: Pick<Liveness, "status" | "heartbeat">;
  config: PathConfig;
  tickMs?: number;
  log: Logger;
}

export class PathCoordinator {
  #pairs = new Map<string, PairState>();
  /** What each node's key holds (canonical, updatedAt aside), as written or read. */
  readonly #written = new Map<string, string>();
  /** Reflexive views already sent to the registry, by node id, so a slow write is not repeated. */
  readonly #reflexiveSent = new Map<string, string>();
  readonly #ticks = new SingleFlight(() => this.#tick());
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: PathCoordinatorOptions) {}

  async start(): Promise<void> {
    await this.#load();
    this.#timer = setInterval(() => void this.#ticks.run(), this.o.tickMs ?? 500);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#ticks.idle();
  }

  /** One pass now (tests; the timer runs them otherwise). */
  tick(): Promise<void> {
    return this.#ticks.run();
  }

  /** The pairs as last planned (tests, diagnostics). */
  get pairs(): ReadonlyMap<string, PairState> {
    return this.#pairs;
  }

  async #load(): Promise<void> {
    const records = await this.o.store.list(undefined, (key, err) => this.o.log.warn({ node: key, err }, "skipping unreadable node paths record"));
    const rounds = new Map<string, number>();
    for (const { key, value } of records) {
      this.#written.set(key, canonical(value));
      for (const p of value.peers) {
        const k = pairKey(value.nodeId, p.peer);
        rounds.set(k, Math.max(rounds.get(k) ?? 0, p.round ?? 0));
      }
    }
    for (const { value } of records) {
      for (const s of value.relaySessions ?? []) {
        this.#pairs.set(s.id, { nodes: s.nodes, relay: { node: value.nodeId, ports: s.ports }, round: rounds.get(s.id) ?? 0, roundAt: undefined, failures: 0, nextRoundAt: undefined, candidates: undefined });
      }
    }
    for (const [k, round] of rounds) {
      if (this.#pairs.has(k)) continue;
      const [a, b] = k.split("-n-").map((x, i) => (i === 0 ? x : `n-${x}`)) as [string, string];
      this.#pairs.set(k, { nodes: [a, b], relay: undefined, round, roundAt: undefined, failures: 0, nextRoundAt: undefined, candidates: undefined });
    }
  }

  async #tick(): Promise<void> {
    try {
      // Only nodes without a public endpoint ever need traversal, and only relays serve them: with
      // none of the first and nothing planned or written before, there is nothing to do.
      if (!this.o.nodes.anyNatted && this.#pairs.size === 0 && this.#written.size === 0) {
        this.#reflexiveSent.clear();
        return;
      }
      const heartbeats = { get: (nodeId: string) => this.o.liveness.heartbeat(nodeId) };
      // Planned with the records as just written: the node cache's watch may not have the
      // reflexive endpoints and mapping yet, and a round started on a stale mapping takes a
      // relayed pair off its relay for nothing.
      const nodes = await this.#recordReflexive(this.o.nodes.traversal(), heartbeats);
      const plan = planPaths({
        nodes: nodes.map((n) => this.#pathNode(n)),
        pairs: this.#pairs,
        direct: (a, b) => reportsDirect(heartbeats, this.o.nodes, a, b) && reportsDirect(heartbeats, this.o.nodes, b, a),
        now: Date.now(),
        config: this.o.config,
      });
      this.#pairs = plan.pairs;
      for (const key of plan.started) {
        const p = plan.pairs.get(key)!;
        this.o.log.info({ pair: key, round: p.round, relay: p.relay?.node }, "hole-punching round");
      }
      await this.#write(plan.records);
    } catch (err) {
      this.o.log.warn({ err }, "path coordination pass failed; trying again next tick");
    }
  }

  #pathNode(n: NodeRecord): PathNode {
    return {
      nodeId: n.nodeId,
      name: n.name,
      site: n.site,
      publicHost: n.endpoints.public?.replace(/:\d+$/, ""),
      reflexive: n.endpoints.reflexive ?? [],
      mapping: n.endpoints.mapping,
      relay: isRelay(n.labels),
      online: this.o.liveness.status(n.nodeId) === "online",
    };
  }

  /**
   * Records what changed; returns `nodes` (the traversal nodes) with what was recorded. Observers
   * are the public nodes, read from the cache only when some node lacks a public endpoint.
   */
  async #recordReflexive(nodes: NodeRecord[], heartbeats: Heartbeats): Promise<NodeRecord[]> {
    const natted = nodes.filter((n) => n.endpoints.public === undefined);
    const observers = natted.length > 0 ? this.o.nodes.list().filter((n) => n.endpoints.public !== undefined) : [];
    const views = reflexiveEndpoints([...observers, ...natted], heartbeats, Date.now() / 1000);
    const recorded = new Map<string, NodeRecord>();
    for (const nodeId of this.#reflexiveSent.keys()) if (!views.has(nodeId)) this.#reflexiveSent.delete(nodeId);
    for (const n of natted) {
      const view = views.get(n.nodeId);
      if (!view || !withReflexive(n.endpoints, view)) {
        this.#reflexiveSent.delete(n.nodeId);
        continue;
      }
      const sent = JSON.stringify(view);
      if (this.#reflexiveSent.get(n.nodeId) === sent) continue;
      this.#reflexiveSent.set(n.nodeId, sent);
      try {
        const got = await this.o.registry.updateNode(n.nodeId, (node) => {
          const endpoints = withReflexive(node.endpoints, view);
          return endpoints ? { ...node, endpoints } : undefined;
        });
        if (got.node) recorded.set(n.nodeId, got.node);
        if (got.outcome === "updated") this.o.log.info({ node: n.nodeId, reflexive: view.reflexive, mapping: view.mapping }, "node's reflexive endpoints as public peers see them");
      } catch (err) {
        this.#reflexiveSent.delete(n.nodeId);
        this.o.log.warn({ node: n.nodeId, err }, "cannot record the node's reflexive endpoints");
      }
    }
    return nodes.map((n) => recorded.get(n.nodeId) ?? n);
  }

  async #write(records: Map<string, NodePaths>): Promise<void> {
    // Both sides of a pair are written back to back: agents see a new round within milliseconds of each other.
    for (const [nodeId, record] of records) {
      const text = canonical(record);
      if (this.#written.get(nodeId) === text) continue;
      await this.o.store.put(nodeId, { ...record, updatedAt: new Date().toISOString() });
      this.#written.set(nodeId, text);
    }
    for (const nodeId of [...this.#written.keys()]) {
      if (records.has(nodeId)) continue;
      await this.o.store.delete(nodeId);
      this.#written.delete(nodeId);
    }
  }
}

function canonical(r: NodePaths | NodePathsRecord): string {
  return canonicalJson({ ...r, updatedAt: "" });
}

/** The last heartbeat of a node, by id. */
type Heartbeats = Pick<ReadonlyMap<string, Heartbeat>, "get">;

/** Whether node `from`'s last heartbeat says it reaches `to` directly. */
function reportsDirect(heartbeats: Heartbeats, nodes: Pick<NodeCache, "get">, from: string, to: string): boolean {
  const key = nodes.get(to)?.wireguardPublicKey;
  return heartbeats.get(from)?.peers.find((p) => p.publicKey === key)?.path === "direct";
}
