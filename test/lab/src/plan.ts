/**
 * The planner: compares each namespace's desired state with what was observed and emits only
 * the missing steps. Pure, so "up twice changes nothing" and "a half-built lab is completed"
 * are unit-tested without root.
 *
 * Steps run in phases across all namespaces: create links (one end of each veth pair creates the
 * pair), configure links/addresses/routes, write sysctls, then add firewall rules.
 */
import type { FirewallRule, NamespaceSpec, SysctlSpec } from "./network.js";
import { ruleKey, type ObservedNamespace } from "./observe.js";

export interface NamespacePlan {
  netns: string;
  /** `ip -batch` lines that create links (phase 1). */
  create: string[];
  /** `ip -batch` lines that set links up/master/mtu and add addresses and routes (phase 2). */
  configure: string[];
  /** Sysctls to write (phase 3). */
  sysctls: SysctlSpec[];
  /** Firewall rules to append (phase 4). */
  rules: FirewallRule[];
}

/** Which desired namespaces to create, and which exist without the lab having made them. */
export function classifyNamespaces(input: {
  desired: readonly string[];
  existing: ReadonlySet<string>;
  recorded: ReadonlySet<string>;
}): { toCreate: string[]; conflicts: string[] } {
  const toCreate = input.desired.filter((n) => !input.existing.has(n));
  const conflicts = input.desired.filter((n) => input.existing.has(n) && !input.recorded.has(n));
  return { toCreate, conflicts };
}

/** Plans one namespace from its observation (taken after the namespace itself exists). */
export function planNamespace(spec: NamespaceSpec, observed: ObservedNamespace): NamespacePlan {
  const plan: NamespacePlan = { netns: spec.netns, create: [], configure: [], sysctls: [], rules: [] };

  for (const link of spec.links) {
    const have = observed.links.get(link.name);
    if (!have && link.kind === "bridge") {
      plan.create.push(`link add ${link.name} mtu ${link.mtu} type bridge`);
    } else if (!have && link.kind === "veth" && link.createsPair) {
      // A veth pair is created and destroyed as a whole, so both ends are missing together.
      plan.create.push(
        `link add ${link.name} mtu ${link.mtu} type veth peer name ${link.peer.name} mtu ${link.mtu} netns ${link.peer.netns}`,
      );
    }
    // A link created in phase 1 already has its MTU but starts down and unenslaved.
    const args: string[] = [];
    if (have && link.kind !== "loopback" && have.mtu !== link.mtu) args.push("mtu", String(link.mtu));
    if (link.kind === "veth" && link.master && have?.master !== link.master) args.push("master", link.master);
    if (!have?.up) args.push("up");
    if (args.length > 0) plan.configure.push(`link set dev ${link.name} ${args.join(" ")}`);
  }

  for (const a of spec.addresses) {
    const cidr = `${a.address}/${a.prefixLength}`;
    if (!observed.links.get(a.dev)?.addresses.includes(cidr)) plan.configure.push(`addr add ${cidr} dev ${a.dev}`);
  }
  for (const r of spec.routes) {
    if (!observed.routes.some((o) => o.dst === r.dst && o.via === r.via)) plan.configure.push(`route add ${r.dst} via ${r.via}`);
  }
  for (const s of spec.sysctls) {
    const have = observed.sysctls.get(s.key);
    if (have === s.value) continue;
    // An optional key absent from this kernel is skipped; a required key that does not exist
    // yet (the sysctl of a link made in phase 1) is written once the link exists.
    if (have === undefined && s.optional) continue;
    plan.sysctls.push(s);
  }
  for (const r of spec.rules) if (!observed.rules.has(ruleKey(r))) plan.rules.push(r);
  return plan;
}

/** Plans every namespace. `observed` is keyed by netns and must cover every spec. */
export function planLab(specs: readonly NamespaceSpec[], observed: ReadonlyMap<string, ObservedNamespace>): NamespacePlan[] {
  return specs.map((spec) => {
    const obs = observed.get(spec.netns);
    if (!obs) throw new Error(`plan: no observation for ${spec.netns}`);
    return planNamespace(spec, obs);
  });
}

/** Human-readable steps of a plan, one per change (`weft-aws-1: link set dev eth0 up`). */
export function describePlan(plans: readonly NamespacePlan[]): string[] {
  return plans.flatMap((p) => [
    ...p.create.map((l) => `${p.netns}: ip ${l}`),
    ...p.configure.map((l) => `${p.netns}: ip ${l}`),
    ...p.sysctls.map((s) => `${p.netns}: sysctl ${s.key}=${s.value}`),
    ...p.rules.map((r) => `${p.netns}: iptables -t ${r.table} -A ${r.chain} ${r.spec.join(" ")}`),
  ]);
}

/** Renders rules as iptables-restore input: one `*table … COMMIT` block per table. */
export function restoreScript(rules: readonly FirewallRule[]): string {
  const tables = [...new Set(rules.map((r) => r.table))];
  return tables
    .map((t) =>
      [`*${t}`, ...rules.filter((r) => r.table === t).map((r) => `-A ${r.chain} ${r.spec.join(" ")}`), "COMMIT"].join("\n"),
    )
    .join("\n")
    .concat("\n");
}
