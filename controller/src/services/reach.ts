/**
 * Whether a source identity may open a connection to a backend, as the backend's node would
 * decide it: the policy compiler's entries for that node (compiled once per node and snapshot)
 * read with the datapath's rule (bpf/progs/lib/policy.h): the interval of that protocol holding
 * the port, and any protocol (proto 0); a deny wins; else an allow passes; else a default-deny
 * destination drops; else it passes. Services use it so that a client is never handed a backend the
 * destination's policy would drop: the tc enforcement at the destination stays the real gate.
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

  constructor(private readonly compiler: Pick<PolicyCompiler, "compile">) {}

  /** Whether `src` may reach `dst` (a local identity of the node `nodeId`) on proto/port there. */
  allows(nodeId: string, target: CompileTarget, src: number, dst: number, proto: number, port: number): boolean {
    let rules = this.#byNode.get(nodeId);
    if (!rules) {
      const compiled = this.compiler.compile(target);
      const pairs = new Map<string, PolicyEntry[]>();
      for (const e of compiled.entries) {
        const k = key(e.srcId, e.dstId);
        const list = pairs.get(k);
        if (list) list.push(e);
        else pairs.set(k, [e]);
      }
      rules = { pairs, defaultDeny: new Set(compiled.defaultDeny) };
      this.#byNode.set(nodeId, rules);
    }
    const hits = (rules.pairs.get(key(src, dst)) ?? []).filter((e) => (e.proto === proto && e.port <= port && port <= e.endPort) || e.proto === 0);
    if (hits.some((e) => e.verdict === "deny")) return false;
    if (hits.some((e) => e.verdict === "allow")) return true;
    return !rules.defaultDeny.has(dst);
  }
}
