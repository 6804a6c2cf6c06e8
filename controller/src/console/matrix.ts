/**
 * The policy matrix the console draws: for every pair of identities in the overlay, what the
 * datapath would do and which rules say so. Pure: it compiles each rule on its own with the
 * policy compiler (policy/compile.ts), so every interval keeps the rules it came from, resolves
 * the intervals of all rules per (source, destination, protocol) as the compiler does (deny wins:
 * resolvePortIntervals), and then applies the datapath's lookup order (bpf/progs/lib/policy.h): a
 * deny on the port's interval or on any protocol wins; else an allow passes; else the
 * destination's default deny drops; else (no policy selects the destination) everything passes.
 */
import {
  PolicyProtocolNumbers,
  resolvePortIntervals,
  type Identity,
  type MatrixCell,
  type MatrixPort,
  type MatrixReason,
  type Policy,
  type PolicyEntry,
  type PolicyMatrix,
  type PortInterval,
} from "@weft/protocol";
import { PolicyCompiler, type CompileNode } from "../policy/compile.js";

/** Most identities a matrix shows (n² cells). */
export const MATRIX_MAX_IDENTITIES = 150;

export interface MatrixInput {
  policies: Policy[];
  /** Every allocated identity. */
  identities: Identity[];
  /** Enrolled nodes with their identity, labels and workloads. */
  nodes: (CompileNode & { name: string; workloads?: readonly { name: string; identity: Identity }[] | undefined })[];
}

const PROTOCOL_NAMES = new Map<number, string>(Object.entries(PolicyProtocolNumbers).map(([k, v]) => [v, k]));

/** One rule's intervals for one (source, destination, protocol), with the rule. */
interface Sourced extends PortInterval {
  verdict: "allow" | "deny";
  reason: MatrixReason;
}

/** The resolved intervals of one (source, destination, protocol), each with the rules of its verdict. */
interface Resolved extends PortInterval {
  verdict: "allow" | "deny";
  reasons: MatrixReason[];
}

function key(src: number, dst: number, proto: number): string {
  return `${src}/${dst}/${proto}`;
}

export function policyMatrix(input: MatrixInput): PolicyMatrix {
  // The identities in use: nodes' and workloads' (with the hosts that carry them).
  const hosts = new Map<number, { identity: Identity; hosts: Set<string> }>();
  const use = (identity: Identity, host: string) => {
    const got = hosts.get(identity.id) ?? { identity, hosts: new Set<string>() };
    got.hosts.add(host);
    hosts.set(identity.id, got);
  };
  for (const n of input.nodes) {
    if (n.identity) use(n.identity, n.name);
    for (const w of n.workloads ?? []) use(w.identity, `${n.name}/${w.name}`);
  }
  const all = [...hosts.values()].sort((a, b) => a.identity.spiffeId.localeCompare(b.identity.spiffeId) || a.identity.id - b.identity.id);
  const shown = all.slice(0, MATRIX_MAX_IDENTITIES);
  const allIdentities = new Map<number, Identity>(input.identities.map((i) => [i.id, i]));
  for (const h of all) allIdentities.set(h.identity.id, h.identity);
  const compileInput = { identities: [...allIdentities.values()], nodes: input.nodes.map((n) => ({ nodeId: n.nodeId, identity: n.identity, labels: n.labels })) };

  // Each rule compiled alone, for every shown destination: intervals keyed with their rules.
  const sourced = new Map<string, Sourced[]>();
  const defaultDeny = new Map<number, MatrixReason[]>();
  const policies = [...input.policies].sort((a, b) => a.name.localeCompare(b.name));
  for (const policy of policies) {
    policy.rules.forEach((rule, index) => {
      const compiler = new PolicyCompiler({ ...compileInput, policies: [{ ...policy, rules: [rule] }] });
      const reason: MatrixReason = { policy: policy.name, rule: index, action: rule.action };
      for (const { identity } of shown) {
        const compiled = compiler.compile({ identity });
        if (compiled.defaultDeny.includes(identity.id)) defaultDeny.set(identity.id, [...(defaultDeny.get(identity.id) ?? []), reason]);
        for (const e of compiled.entries) add(sourced, e, reason);
      }
    });
  }

  const entries = resolve(sourced);
  const cells: MatrixCell[] = [];
  for (const src of shown) {
    for (const dst of shown) {
      cells.push(cellOf(src.identity.id, dst.identity.id, entries, defaultDeny.get(dst.identity.id)));
    }
  }
  return {
    identities: shown.map((h) => ({ id: h.identity.id, spiffeId: h.identity.spiffeId, hosts: [...h.hosts].sort() })),
    cells,
    omitted: all.length - shown.length,
    policies: policies.map((p) => p.name),
  };
}

function add(sourced: Map<string, Sourced[]>, e: PolicyEntry, reason: MatrixReason): void {
  const k = key(e.srcId, e.dstId, e.proto);
  sourced.set(k, [...(sourced.get(k) ?? []), { from: e.port, to: e.endPort, verdict: e.verdict, reason }]);
}

/** Per key, the intervals of every rule resolved as the compiler resolves them, each with the rules of its verdict that cover it. */
function resolve(sourced: Map<string, Sourced[]>): Map<string, Resolved[]> {
  const out = new Map<string, Resolved[]>();
  for (const [k, list] of sourced) {
    const resolved = resolvePortIntervals(
      list.filter((i) => i.verdict === "allow"),
      list.filter((i) => i.verdict === "deny"),
    );
    out.set(
      k,
      resolved.map((r) => ({ ...r, reasons: uniqueReasons(list.filter((i) => i.verdict === r.verdict && i.from <= r.to && i.to >= r.from).map((i) => i.reason)) })),
    );
  }
  return out;
}

function uniqueReasons(list: MatrixReason[]): MatrixReason[] {
  const seen = new Set<string>();
  return list.filter((r) => {
    const k = `${r.policy}#${r.rule}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Port 0 alone stands for every port of the protocol; a range carries its `endPort`. */
function matrixPort(proto: number, r: Resolved): MatrixPort {
  const every = r.from === 0 && r.to === 65535;
  return { protocol: PROTOCOL_NAMES.get(proto) ?? String(proto), port: every ? 0 : r.from, ...(every || r.to === r.from ? {} : { endPort: r.to }), verdict: r.verdict, reasons: r.reasons };
}

function portText(p: MatrixPort): string {
  if (p.port === 0 && p.endPort === undefined) return p.protocol;
  return `${p.protocol}/${p.port}${p.endPort === undefined ? "" : `-${p.endPort}`}`;
}

function cellOf(src: number, dst: number, entries: Map<string, Resolved[]>, defaultDeny: MatrixReason[] | undefined): MatrixCell {
  if (!defaultDeny) return { source: src, destination: dst, verdict: "open", ports: [], why: "no policy selects the destination: everything passes" };
  const prefix = `${src}/${dst}/`;
  const ports: MatrixPort[] = [];
  for (const [k, list] of entries) {
    if (!k.startsWith(prefix)) continue;
    const proto = Number(k.slice(prefix.length));
    for (const r of list) ports.push(matrixPort(proto, r));
  }
  ports.sort((a, b) => a.protocol.localeCompare(b.protocol) || a.port - b.port);
  // Within a protocol the intervals are resolved already (deny won); a deny on any protocol wins over every allow.
  const anyDenied = (entries.get(key(src, dst, PolicyProtocolNumbers.any)) ?? []).some((r) => r.verdict === "deny");
  const effective = ports.filter((p) => p.verdict === "allow" && !anyDenied);
  const rules = (list: MatrixReason[]) => [...new Set(list.map((r) => `${r.policy}#${r.rule}`))].join(", ");
  const anyProtocol = effective.find((p) => p.protocol === "any");
  if (anyProtocol) return { source: src, destination: dst, verdict: "allow", ports, why: `every protocol allowed by ${rules(anyProtocol.reasons)}` };
  if (effective.length > 0) {
    const what = effective.map(portText).join(", ");
    return { source: src, destination: dst, verdict: "partial", ports, why: `${what} allowed by ${rules(effective.flatMap((p) => p.reasons))}` };
  }
  const denies = ports.filter((p) => p.verdict === "deny");
  if (denies.length > 0) return { source: src, destination: dst, verdict: "deny", ports, why: `denied by ${rules(denies.flatMap((p) => p.reasons))}` };
  return { source: src, destination: dst, verdict: "deny", ports, why: `default deny: ${rules(defaultDeny)} select${defaultDeny.length === 1 ? "s" : ""} the destination and no rule allows this source` };
}
