/**
 * Whether a source identity may open a connection to a backend, as the backend's node would
 * decide it: the policy compiler's entries for that node (compiled once per node and snapshot)
 * read with the datapath's rule (bpf/progs/lib/policy.h): the interval of that protocol holding
 * the port, and any protocol (proto 0); a deny wins; else an allow passes; else a default-deny
 * destination drops; else it passes. Services use it so that a client is never handed a backend the
 * destination's policy would drop: the tc enforcement at the destination stays the real gate.
 *
 * Kept from one snapshot to the next (the services publisher), `refresh` swaps in the new
 * snapshot's compiler, recompiles the cached nodes whose policy may have changed and says which
 * source identities' verdicts moved: only the nodes holding those need their services compiled.
 */
import type { PolicyEntry } from "@weft/protocol";
import type { CompileTarget, PolicyCompiler } from "../policy/compile.js";

interface NodeRules {
  /** The entries of each (source, destination) pair: disjoint port intervals per protocol. */
  pairs: Map<string, PolicyEntry[]>;
  defaultDeny: Set<number>;
}

const key = (src: number, dst: number) => `${src}/${dst}`;

export class PolicyReach {
  readonly #byNode = new Map<string, NodeRules>();

  constructor(private compiler: Pick<PolicyCompiler, "compile">) {}

  /**
   * The next snapshot: `compiler` over it, `nodes` its node records, `dirty` the nodes whose
   * compiled policy may differ (PolicyDelta). Cached nodes in `dirty` are compiled again (dropped
   * when gone). Returns the source identities whose verdict at some cached node may differ, or
   * "all" when a node's default-deny destinations changed (that moves every source).
   */
  refresh(compiler: Pick<PolicyCompiler, "compile">, nodes: ReadonlyMap<string, CompileTarget>, dirty: Iterable<string>): Set<number> | "all" {
    this.compiler = compiler;
    const moved = new Set<number>();
    let all = false;
    for (const nodeId of dirty) {
      const was = this.#byNode.get(nodeId);
      if (!was) continue;
      const target = nodes.get(nodeId);
      if (!target) {
        this.#byNode.delete(nodeId);
        all = true;
        continue;
      }
      const now = this.#compile(target);
      this.#byNode.set(nodeId, now);
      if (!sameSet(was.defaultDeny, now.defaultDeny)) all = true;
      for (const k of new Set([...was.pairs.keys(), ...now.pairs.keys()])) {
        if (JSON.stringify(was.pairs.get(k)) !== JSON.stringify(now.pairs.get(k))) moved.add(Number(k.split("/")[0]));
      }
    }
    return all ? "all" : moved;
  }

  /** Keeps only these nodes' rules and compiles the missing ones now (so that the next refresh can compare them). */
  retain(nodes: ReadonlyMap<string, CompileTarget>, keep: ReadonlySet<string>): void {
    for (const nodeId of this.#byNode.keys()) if (!keep.has(nodeId)) this.#byNode.delete(nodeId);
    for (const nodeId of keep) {
      const target = nodes.get(nodeId);
      if (target && !this.#byNode.has(nodeId)) this.#byNode.set(nodeId, this.#compile(target));
    }
  }

  #compile(target: CompileTarget): NodeRules {
    const compiled = this.compiler.compile(target);
    const pairs = new Map<string, PolicyEntry[]>();
    for (const e of compiled.entries) {
      const k = key(e.srcId, e.dstId);
      const list = pairs.get(k);
      if (list) list.push(e);
      else pairs.set(k, [e]);
    }
    return { pairs, defaultDeny: new Set(compiled.defaultDeny) };
  }

  /** Whether `src` may reach `dst` (a local identity of the node `nodeId`) on proto/port there. */
  allows(nodeId: string, target: CompileTarget, src: number, dst: number, proto: number, port: number): boolean {
    let rules = this.#byNode.get(nodeId);
    if (!rules) {
      rules = this.#compile(target);
      this.#byNode.set(nodeId, rules);
    }
    const hits = (rules.pairs.get(key(src, dst)) ?? []).filter((e) => (e.proto === proto && e.port <= port && port <= e.endPort) || e.proto === 0);
    if (hits.some((e) => e.verdict === "deny")) return false;
    if (hits.some((e) => e.verdict === "allow")) return true;
    return !rules.defaultDeny.has(dst);
  }
}

function sameSet(a: ReadonlySet<number>, b: ReadonlySet<number>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
