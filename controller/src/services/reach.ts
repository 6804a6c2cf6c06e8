/**
 * Whether a source identity may open a connection to a backend, as the backend's node would
 * decide it: the policy compiler's entries for that node (compiled once per node and snapshot)
 * read with the datapath's rule (bpf/progs/lib/policy.h policy_check): exact port, any port of
 * the protocol, any protocol; a deny wins; else an allow passes; else a default-deny destination
 * drops; else it passes. Services use it so that a client is never handed a backend the
 * destination's policy would drop: the tc enforcement at the destination stays the real gate.
 */
import type { PolicyEntry } from "@weft/protocol";
import type { CompileTarget, PolicyCompiler } from "../policy/compile.js";

interface NodeRules {
  verdicts: Map<string, PolicyEntry["verdict"]>;
  defaultDeny: Set<number>;
}

const key = (src: number, dst: number, proto: number, port: number) => `${src}/${dst}/${proto}/${port}`;

export class PolicyReach {
  readonly #byNode = new Map<string, NodeRules>();

  constructor(private readonly compiler: Pick<PolicyCompiler, "compile">) {}

  /** Whether `src` may reach `dst` (a local identity of the node `nodeId`) on proto/port there. */
  allows(nodeId: string, target: CompileTarget, src: number, dst: number, proto: number, port: number): boolean {
    let rules = this.#byNode.get(nodeId);
    if (!rules) {
      const compiled = this.compiler.compile(target);
      rules = { verdicts: new Map(compiled.entries.map((e) => [key(e.srcId, e.dstId, e.proto, e.dport), e.verdict])), defaultDeny: new Set(compiled.defaultDeny) };
      this.#byNode.set(nodeId, rules);
    }
    const found = [rules.verdicts.get(key(src, dst, proto, port)), rules.verdicts.get(key(src, dst, proto, 0)), rules.verdicts.get(key(src, dst, 0, 0))];
    if (found.includes("deny")) return false;
    if (found.includes("allow")) return true;
    return !rules.defaultDeny.has(dst);
  }
}
