/**
 * The policy matrix the console draws: for every pair of identities in the overlay, what the
 * datapath would do and which rules say so. Pure: it compiles each rule on its own with the
 * policy compiler (policy/compile.ts), so every entry keeps the rule it came from, and then
 * applies the datapath's lookup order (bpf/progs/lib/policy.h): a deny on the exact port, on any
 * port of the protocol or on any protocol wins; else an allow passes; else the destination's
 * default deny drops; else (no policy selects the destination) everything passes.
 */
import { PolicyProtocolNumbers, type Identity, type MatrixCell, type MatrixPort, type MatrixReason, type Policy, type PolicyEntry, type PolicyMatrix } from "@weft/protocol";
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

interface Sourced {
  verdict: "allow" | "deny";
  reasons: MatrixReason[];
}

function key(src: number, dst: number, proto: number, dport: number): string {
  return `${src}/${dst}/${proto}/${dport}`;
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

  // Each rule compiled alone, for every shown destination: entries keyed with their rules.
  const entries = new Map<string, Sourced>();
  const defaultDeny = new Map<number, MatrixReason[]>();
  const policies = [...input.policies].sort((a, b) => a.name.localeCompare(b.name));
  for (const policy of policies) {
    policy.rules.forEach((rule, index) => {
      const compiler = new PolicyCompiler({ ...compileInput, policies: [{ ...policy, rules: [rule] }] });
      const reason: MatrixReason = { policy: policy.name, rule: index, action: rule.action };
      for (const { identity } of shown) {
        const compiled = compiler.compile({ identity });
        if (compiled.defaultDeny.includes(identity.id)) defaultDeny.set(identity.id, [...(defaultDeny.get(identity.id) ?? []), reason]);
        for (const e of compiled.entries) add(entries, e, reason);
      }
    });
  }

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

function add(entries: Map<string, Sourced>, e: PolicyEntry, reason: MatrixReason): void {
  const k = key(e.srcId, e.dstId, e.proto, e.dport);
  const got = entries.get(k);
  if (!got) return void entries.set(k, { verdict: e.verdict, reasons: [reason] });
  // One verdict per key, deny wins (as the compiler keeps it); reasons of the winning verdict only.
  if (got.verdict === e.verdict) got.reasons.push(reason);
  else if (e.verdict === "deny") entries.set(k, { verdict: "deny", reasons: [reason] });
}

function cellOf(src: number, dst: number, entries: Map<string, Sourced>, defaultDeny: MatrixReason[] | undefined): MatrixCell {
  if (!defaultDeny) return { source: src, destination: dst, verdict: "open", ports: [], why: "no policy selects the destination: everything passes" };
  const prefix = `${src}/${dst}/`;
  const ports: MatrixPort[] = [];
  for (const [k, v] of entries) {
    if (!k.startsWith(prefix)) continue;
    const [proto, dport] = k.slice(prefix.length).split("/").map(Number) as [number, number];
    ports.push({ protocol: PROTOCOL_NAMES.get(proto) ?? String(proto), port: dport, verdict: v.verdict, reasons: v.reasons });
  }
  ports.sort((a, b) => a.protocol.localeCompare(b.protocol) || a.port - b.port);
  const denied = (proto: number, dport: number) =>
    entries.get(key(src, dst, proto, dport))?.verdict === "deny" || (dport !== 0 && entries.get(key(src, dst, proto, 0))?.verdict === "deny") || entries.get(key(src, dst, 0, 0))?.verdict === "deny";
  const effective = ports.filter((p) => p.verdict === "allow" && !denied(PolicyProtocolNumbers[p.protocol as keyof typeof PolicyProtocolNumbers] ?? -1, p.port));
  const rules = (list: MatrixReason[]) => [...new Set(list.map((r) => `${r.policy}#${r.rule}`))].join(", ");
  const anyProtocol = effective.find((p) => p.protocol === "any");
  if (anyProtocol) return { source: src, destination: dst, verdict: "allow", ports, why: `every protocol allowed by ${rules(anyProtocol.reasons)}` };
  if (effective.length > 0) {
    const what = effective.map((p) => (p.port === 0 ? p.protocol : `${p.protocol}/${p.port}`)).join(", ");
    return { source: src, destination: dst, verdict: "partial", ports, why: `${what} allowed by ${rules(effective.flatMap((p) => p.reasons))}` };
  }
  const denies = ports.filter((p) => p.verdict === "deny");
  if (denies.length > 0) return { source: src, destination: dst, verdict: "deny", ports, why: `denied by ${rules(denies.flatMap((p) => p.reasons))}` };
  return { source: src, destination: dst, verdict: "deny", ports, why: `default deny: ${rules(defaultDeny)} select${defaultDeny.length === 1 ? "s" : ""} the destination and no rule allows this source` };
}
