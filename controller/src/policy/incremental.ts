/**
 * Which nodes' compiled policy a change can touch, so a publisher recompiles only those.
 *
 * A node's compiled policy (PolicyCompiler.compile) is a pure function of its local identities
 * (its own, its workloads') and of the resolved rules whose destination (`to`) holds one of them:
 * each such rule's policy name, action, sources (`from`) and ports. Selectors resolve over the
 * whole snapshot (identities, node identities and labels), so a node added, removed or relabelled
 * can change the resolved `to` or `from` of any rule. Hence, between two snapshots, a node's
 * output can differ only if
 *   - its own record changed (local identities), or
 *   - a rule (by policy and index) was added, removed or resolves differently (action, `to`,
 *     `from`, ports), and one of the node's local identities is in that rule's old or new `to`.
 * `PolicyDelta.update` resolves every rule of the new snapshot (cheap: selectors once per pass,
 * not per node), compares each with the previous pass's and returns exactly those nodes, found
 * through an index of identity number → nodes holding it locally. Pure bookkeeping, no I/O.
 */
import type { Identity, NodeRecord, Policy } from "@weft/protocol";
import { localIdentitiesOf, PolicyCompiler, type CompileInput, type CompileTarget, type ResolvedRule } from "./compile.js";

/** What a node record contributes to compilation. */
export type PolicyNode = Pick<NodeRecord, "nodeId" | "identity" | "labels" | "workloads">;

/** The compiler's input from the mirrored buckets: bucket identities plus every node's and workload's. */
export function compileInputOf(policies: Iterable<Policy>, identities: Iterable<Identity>, nodes: Iterable<PolicyNode>): CompileInput {
  const all = new Map<number, Identity>();
  for (const i of identities) all.set(i.id, { id: i.id, spiffeId: i.spiffeId });
  const list = [...nodes];
  for (const n of list) for (const w of n.workloads ?? []) all.set(w.identity.id, w.identity);
  return {
    policies: [...policies],
    identities: [...all.values()],
    nodes: list.map((n) => ({ nodeId: n.nodeId, identity: n.identity, labels: n.labels })),
  };
}

/** A resolved rule as one comparable string (sets sorted). */
function fingerprint(r: ResolvedRule): string {
  const to = [...r.to].sort((a, b) => a - b).join(",");
  const from = [...r.from].sort((a, b) => a - b).join(",");
  return `${r.action}|${to}|${from}|${JSON.stringify(r.ports)}`;
}

interface Known {
  fingerprint: string;
  to: number[];
}

export class PolicyDelta {
  /** Each rule of the last snapshot, by key. */
  #rules = new Map<string, Known>();
  /** Each node's local identities as last seen. */
  readonly #local = new Map<string, number[]>();
  /** Identity number → nodes holding it locally. */
  readonly #holders = new Map<number, Set<string>>();
  #compiler: PolicyCompiler | undefined;

  /** The compiler of the last snapshot given to update(). */
  get compiler(): PolicyCompiler {
    if (!this.#compiler) throw new Error("PolicyDelta: update() first");
    return this.#compiler;
  }

  /** Nodes holding `id` locally (as of the last update). */
  holders(id: number): ReadonlySet<string> {
    return this.#holders.get(id) ?? EMPTY;
  }

  /**
   * Takes the new snapshot (`nodes` every current node record; `changedNodes` the ids whose record
   * was put or deleted since the last update, or "all") and returns the ids of the nodes whose
   * compiled policy may differ from the last snapshot's: changed nodes (also deleted ones) and
   * the holders of every identity in the old or new destination of a rule that changed.
   */
  update(input: CompileInput, nodes: ReadonlyMap<string, CompileTarget>, changedNodes: Iterable<string> | "all"): Set<string> {
    const dirty = new Set<string>();
    const changed = changedNodes === "all" ? new Set([...nodes.keys(), ...this.#local.keys()]) : changedNodes;
    for (const nodeId of changed) {
      dirty.add(nodeId);
      for (const id of this.#local.get(nodeId) ?? []) {
        const set = this.#holders.get(id);
        if (set?.delete(nodeId) && set.size === 0) this.#holders.delete(id);
      }
      const target = nodes.get(nodeId);
      if (!target) {
        this.#local.delete(nodeId);
        continue;
      }
      const local = localIdentitiesOf(target);
      this.#local.set(nodeId, local);
      for (const id of local) {
        let set = this.#holders.get(id);
        if (!set) this.#holders.set(id, (set = new Set()));
        set.add(nodeId);
      }
    }
    this.#compiler = new PolicyCompiler(input);
    const next = new Map<string, Known>();
    for (const r of this.#compiler.rules) next.set(r.key, { fingerprint: fingerprint(r), to: [...r.to] });
    const touch = (to: readonly number[]) => {
      for (const id of to) for (const nodeId of this.#holders.get(id) ?? EMPTY) dirty.add(nodeId);
    };
    for (const [key, now] of next) {
      const was = this.#rules.get(key);
      if (was?.fingerprint === now.fingerprint) continue;
      touch(now.to);
      if (was) touch(was.to);
    }
    for (const [key, was] of this.#rules) if (!next.has(key)) touch(was.to);
    this.#rules = next;
    return dirty;
  }
}

const EMPTY: ReadonlySet<string> = new Set();
