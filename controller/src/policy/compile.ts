/**
 * The policy compiler: pure functions from (policies, identities, nodes) to the
 * map entries ONE node enforces. Enforcement is at the destination (ingress), so
 * a node gets only the rules whose `to` selects one of its local identities: its
 * own and those of its workloads.
 *
 * - Selectors resolve to identity numbers: `identity` by SPIFFE ID (one that is
 *   not allocated yet selects nothing, so such a policy is stored but compiles
 *   to nothing until a node has that identity); `namespace`/`serviceAccount` by
 *   the parts of each SPIFFE ID (node and workload identities alike); `labels`
 *   by the labels of enrolled nodes (so they select node identities only).
 *   `cidr` compiles to the reserved `world` identity (2) for now: every address
 *   outside the overlay. Per-CIDR identities in the ipcache come later.
 * - Ports expand to one entry per port: no ports = any protocol (proto 0,
 *   dport 0); a protocol without a port = dport 0; `any` with a port = tcp and
 *   udp (the map's any-protocol key cannot carry a port).
 * - The map holds one verdict per key. When an allow and a deny compile to the
 *   exact same key, the deny is kept and the allow dropped; a deny on a broader
 *   key (any port, any protocol) is kept beside narrower allows and wins in the
 *   datapath (bpf/progs/lib/policy.h).
 * - `defaultDeny` holds each local identity that any rule (allow or deny)
 *   selects as a destination: "default deny between identities that have any
 *   policy". A rule whose sources select nothing yet still makes it default-deny.
 * - Output is sorted (srcId, dstId, proto, dport), so diffs are stable.
 */
import { PolicyProtocolNumbers, ReservedIdentities, SPIFFE_ID_PATTERN, type Identity, type Policy, type PolicyEntry, type PortSpec, type Rule, type Selector } from "@weft/protocol";

export interface CompileNode {
  nodeId: string;
  identity?: Identity | undefined;
  labels: Record<string, string>;
}

export interface CompileInput {
  policies: Policy[];
  /** Every allocated identity (number and SPIFFE ID). */
  identities: Identity[];
  /** Every enrolled node: label selectors resolve through them. */
  nodes: CompileNode[];
}

export interface CompiledNodePolicy {
  /** Names of the policies with a rule that targets the node, sorted. */
  policies: string[];
  /** Local identities with any policy (a rule selects them as destination), sorted. */
  defaultDeny: number[];
  entries: PolicyEntry[];
}

/** What a node enforces for: its own identity and its workloads' identities. */
export interface CompileTarget {
  identity?: Identity | undefined;
  workloads?: readonly { identity: Identity }[] | undefined;
}

/** The identity numbers a node enforces for, sorted and deduplicated. */
export function localIdentitiesOf(target: CompileTarget): number[] {
  const ids = new Set<number>();
  if (target.identity) ids.add(target.identity.id);
  for (const w of target.workloads ?? []) ids.add(w.identity.id);
  return [...ids].sort((a, b) => a - b);
}

/** Rules with their selectors resolved once, shared by every node compiled from one snapshot. */
interface ResolvedRule {
  policy: string;
  action: Rule["action"];
  to: Set<number>;
  from: number[];
  ports: [number, number][];
}

/**
 * A compiler over one snapshot of policies, identities and nodes: selectors are
 * resolved once, then each node costs only the rules that target it.
 */
export class PolicyCompiler {
  private readonly rules: ResolvedRule[] = [];

  constructor(input: CompileInput) {
    const resolver = new SelectorResolver(input);
    for (const policy of [...input.policies].sort((a, b) => a.name.localeCompare(b.name))) {
      for (const rule of policy.rules) {
        this.rules.push({ policy: policy.name, action: rule.action, to: resolver.resolveAll(rule.to), from: [...resolver.resolveAll(rule.from)], ports: expandPorts(rule) });
      }
    }
  }

  /** The entries a node needs: only rules whose destination selects one of its local identities. */
  compile(target: CompileTarget): CompiledNodePolicy {
    const local = localIdentitiesOf(target);
    if (local.length === 0) return { policies: [], defaultDeny: [], entries: [] };
    const byKey = new Map<string, PolicyEntry>();
    const contributing = new Set<string>();
    const denied = new Set<number>();
    for (const rule of this.rules) {
      const dsts = local.filter((id) => rule.to.has(id));
      if (dsts.length === 0) continue;
      contributing.add(rule.policy);
      for (const dst of dsts) {
        denied.add(dst);
        for (const src of rule.from) {
          for (const [proto, dport] of rule.ports) {
            const entry: PolicyEntry = { srcId: src, dstId: dst, proto, dport, verdict: rule.action };
            const key = entryKey(entry);
            // One verdict per key: deny replaces allow, never the other way round.
            if (byKey.get(key)?.verdict !== "deny") byKey.set(key, entry);
          }
        }
      }
    }
    return { policies: [...contributing].sort(), defaultDeny: [...denied].sort((a, b) => a - b), entries: sortEntries([...byKey.values()]) };
  }
}

/** The entries one node needs (see PolicyCompiler; compiling many nodes, build one compiler). */
export function compileForNode(input: CompileInput, target: CompileTarget): CompiledNodePolicy {
  return new PolicyCompiler(input).compile(target);
}

/** (proto, dport) pairs of a rule, deduplicated. */
export function expandPorts(rule: Pick<Rule, "ports">): [number, number][] {
  if (!rule.ports || rule.ports.length === 0) return [[PolicyProtocolNumbers.any, 0]];
  const out = new Map<string, [number, number]>();
  const add = (proto: number, dport: number) => out.set(`${proto}/${dport}`, [proto, dport]);
  for (const p of rule.ports) {
    const protos = p.protocol === "any" && p.port !== undefined ? [PolicyProtocolNumbers.tcp, PolicyProtocolNumbers.udp] : [PolicyProtocolNumbers[p.protocol]];
    for (const proto of protos) for (const port of portsOf(p)) add(proto, port);
  }
  return [...out.values()];
}

/** Number of (proto, dport) pairs a rule expands to, without building them. */
export function expandedPortCount(rule: Pick<Rule, "ports">): number {
  if (!rule.ports || rule.ports.length === 0) return 1;
  return rule.ports.reduce((n, p) => n + (p.protocol === "any" && p.port !== undefined ? 2 : 1) * portsOf(p).length, 0);
}

function portsOf(p: PortSpec): number[] {
  if (p.port === undefined) return [0];
  const last = p.endPort ?? p.port;
  return Array.from({ length: last - p.port + 1 }, (_, i) => (p.port ?? 0) + i);
}

/** Selector → identity numbers, over one snapshot of identities and nodes. */
class SelectorResolver {
  private readonly identities: Identity[];

  constructor(private readonly input: CompileInput) {
    const all = new Map<number, Identity>();
    for (const i of input.identities) all.set(i.id, i);
    for (const n of input.nodes) if (n.identity) all.set(n.identity.id, n.identity);
    this.identities = [...all.values()];
  }

  resolveAll(selectors: Selector[]): Set<number> {
    const out = new Set<number>();
    for (const s of selectors) for (const id of this.resolve(s)) out.add(id);
    return out;
  }

  private resolve(s: Selector): number[] {
    if ("identity" in s) return this.identities.filter((i) => i.spiffeId === s.identity).map((i) => i.id);
    if ("namespace" in s) {
      return this.identities
        .filter((i) => {
          const m = SPIFFE_ID_PATTERN.exec(i.spiffeId);
          return m !== null && m[3] === s.namespace && (s.serviceAccount === undefined || m[5] === s.serviceAccount);
        })
        .map((i) => i.id);
    }
    if ("labels" in s) {
      const wanted = Object.entries(s.labels);
      return this.input.nodes.filter((n) => n.identity && wanted.every(([k, v]) => n.labels[k] === v)).map((n) => n.identity!.id);
    }
    // cidr: the reserved world identity until the ipcache carries CIDR identities.
    return [ReservedIdentities.world];
  }
}

function entryKey(e: PolicyEntry): string {
  return `${e.srcId}/${e.dstId}/${e.proto}/${e.dport}`;
}

export function sortEntries(entries: PolicyEntry[]): PolicyEntry[] {
  return entries.sort((a, b) => a.srcId - b.srcId || a.dstId - b.dstId || a.proto - b.proto || a.dport - b.dport);
}

export interface EntryDiff {
  /** Entries to write: new keys, and keys whose verdict changed (a map update replaces the value). */
  add: PolicyEntry[];
  /** Entries whose key is gone. */
  remove: PolicyEntry[];
}

/** What to change in a node's map to go from `old` to `next`, in the compiler's order. */
export function diffEntries(old: PolicyEntry[], next: PolicyEntry[]): EntryDiff {
  const before = new Map(old.map((e) => [entryKey(e), e]));
  const after = new Map(next.map((e) => [entryKey(e), e]));
  return {
    add: sortEntries(next.filter((e) => before.get(entryKey(e))?.verdict !== e.verdict)),
    remove: sortEntries(old.filter((e) => !after.has(entryKey(e)))),
  };
}
