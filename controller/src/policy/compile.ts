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
 * - Ports become port intervals per protocol: no ports = any protocol (proto 0,
 *   every port); a protocol without a port = every port of it; `any` with a port
 *   = tcp and udp (the any-protocol lookup has no port).
 * - Per (source, destination, protocol) the allows and denies of every rule are
 *   resolved into disjoint port intervals with their final verdict, deny winning
 *   wherever a deny covers a port (resolvePortIntervals, @weft/protocol): one
 *   verdict per port, a handful of entries per range however wide. A deny on
 *   any protocol is kept beside the per-protocol intervals and wins in the
 *   datapath (bpf/progs/lib/policy.h).
 * - Each interval costs a few prefixes of the datapath's LPM map
 *   (portRangePrefixes); `mapEntries` counts them, so a policy that would not fit
 *   the map is known before it is sent.
 * - `defaultDeny` holds each local identity that any rule (allow or deny)
 *   selects as a destination: "default deny between identities that have any
 *   policy". A rule whose sources select nothing yet still makes it default-deny.
 * - Output is sorted (srcId, dstId, proto, port), so diffs are stable.
 */
import {
  ALL_PORTS,
  PolicyProtocolNumbers,
  ReservedIdentities,
  SPIFFE_ID_PATTERN,
  mergeIntervals,
  portRangePrefixCount,
  resolvePortIntervals,
  type Identity,
  type Policy,
  type PolicyEntry,
  type PortInterval,
  type Rule,
  type Selector,
} from "@weft/protocol";

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
  /** Prefixes of the datapath's policy map `entries` take. */
  mapEntries: number;
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
export interface ResolvedRule {
  /** `<policy>#<index of the rule in it>`: the same rule across snapshots. */
  key: string;
  policy: string;
  action: Rule["action"];
  to: Set<number>;
  from: number[];
  ports: ProtoPorts[];
}

/** Ports of one protocol (0 = any protocol, then every port). */
export interface ProtoPorts extends PortInterval {
  proto: number;
}

/**
 * A compiler over one snapshot of policies, identities and nodes: selectors are
 * resolved once, then each node costs only the rules that target it.
 */
export class PolicyCompiler {
  /** Every rule of every policy, resolved, by policy name. */
  readonly rules: ResolvedRule[] = [];

  constructor(input: CompileInput) {
    const resolver = new SelectorResolver(input);
    for (const policy of [...input.policies].sort((a, b) => a.name.localeCompare(b.name))) {
      for (const [index, rule] of policy.rules.entries()) {
        this.rules.push({ key: `${policy.name}#${index}`, policy: policy.name, action: rule.action, to: resolver.resolveAll(rule.to), from: [...resolver.resolveAll(rule.from)], ports: expandPorts(rule) });
      }
    }
  }

  /** The entries a node needs: only rules whose destination selects one of its local identities. */
  compile(target: CompileTarget): CompiledNodePolicy {
    const local = localIdentitiesOf(target);
    if (local.length === 0) return { policies: [], defaultDeny: [], entries: [], mapEntries: 0 };
    const byKey = new Map<string, { srcId: number; dstId: number; proto: number; allow: PortInterval[]; deny: PortInterval[] }>();
    const contributing = new Set<string>();
    const denied = new Set<number>();
    for (const rule of this.rules) {
      const dsts = local.filter((id) => rule.to.has(id));
      if (dsts.length === 0) continue;
      contributing.add(rule.policy);
      for (const dst of dsts) {
        denied.add(dst);
        for (const src of rule.from) {
          for (const p of rule.ports) {
            const key = `${src}/${dst}/${p.proto}`;
            let acc = byKey.get(key);
            if (!acc) byKey.set(key, (acc = { srcId: src, dstId: dst, proto: p.proto, allow: [], deny: [] }));
            acc[rule.action].push({ from: p.from, to: p.to });
          }
        }
      }
    }
    const entries: PolicyEntry[] = [];
    let mapEntries = 0;
    for (const acc of byKey.values()) {
      for (const i of resolvePortIntervals(acc.allow, acc.deny)) {
        entries.push({ srcId: acc.srcId, dstId: acc.dstId, proto: acc.proto, port: i.from, endPort: i.to, verdict: i.verdict });
        mapEntries += portRangePrefixCount(i.from, i.to);
      }
    }
    return { policies: [...contributing].sort(), defaultDeny: [...denied].sort((a, b) => a - b), entries: sortEntries(entries), mapEntries };
  }
}

/** The entries one node needs (see PolicyCompiler; compiling many nodes, build one compiler). */
export function compileForNode(input: CompileInput, target: CompileTarget): CompiledNodePolicy {
  return new PolicyCompiler(input).compile(target);
}

/** The port intervals per protocol of a rule, merged per protocol. */
export function expandPorts(rule: Pick<Rule, "ports">): ProtoPorts[] {
  if (!rule.ports || rule.ports.length === 0) return [{ proto: PolicyProtocolNumbers.any, ...ALL_PORTS }];
  const byProto = new Map<number, PortInterval[]>();
  for (const p of rule.ports) {
    const protos = p.protocol === "any" && p.port !== undefined ? [PolicyProtocolNumbers.tcp, PolicyProtocolNumbers.udp] : [PolicyProtocolNumbers[p.protocol]];
    const interval = p.port === undefined ? { ...ALL_PORTS } : { from: p.port, to: p.endPort ?? p.port };
    for (const proto of protos) byProto.set(proto, [...(byProto.get(proto) ?? []), interval]);
  }
  const out: ProtoPorts[] = [];
  for (const [proto, list] of [...byProto].sort(([a], [b]) => a - b)) {
    // Any protocol covers every port whatever the rule says.
    for (const i of proto === PolicyProtocolNumbers.any ? [ALL_PORTS] : mergeIntervals(list)) out.push({ proto, from: i.from, to: i.to });
  }
  return out;
}

/** Map entries (port prefixes) a rule takes per source and destination identity. */
export function expandedPortCount(rule: Pick<Rule, "ports">): number {
  return expandPorts(rule).reduce((n, p) => n + portRangePrefixCount(p.from, p.to), 0);
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

export function sortEntries(entries: PolicyEntry[]): PolicyEntry[] {
  return entries.sort((a, b) => a.srcId - b.srcId || a.dstId - b.dstId || a.proto - b.proto || a.port - b.port);
}
