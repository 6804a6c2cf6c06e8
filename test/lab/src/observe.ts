/**
 * Reads what actually exists: which namespaces, and inside each the links, addresses, routes,
 * sysctls and firewall rules the lab cares about. Read-only; the planner turns the difference
 * from the desired state into commands.
 */
import { type FirewallRule, type NamespaceSpec } from "./network.js";
import { LabCommandError } from "./errors.js";
import { mapLimit, run, runRaw } from "./run.js";

export interface ObservedLink {
  name: string;
  /** `veth`, `bridge`, … (undefined for loopback). */
  kind: string | undefined;
  mtu: number;
  master: string | undefined;
  /** Administratively up (the UP flag). */
  up: boolean;
  /** Operationally up (carrier). */
  lowerUp: boolean;
  /** IPv4 addresses as `a.b.c.d/len`. */
  addresses: string[];
}

export interface ObservedRoute {
  dst: string;
  via: string | undefined;
}

export interface ObservedNamespace {
  netns: string;
  exists: boolean;
  links: Map<string, ObservedLink>;
  routes: ObservedRoute[];
  /** Values of the spec's sysctl keys that exist in this namespace. */
  sysctls: Map<string, string>;
  /** Keys (see ruleKey) of the spec's firewall rules that are present. */
  rules: Set<string>;
}

/** Names of all network namespaces (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run(["ip", "-j", "netns", "list"]);
  if (stdout.trim() === "") return [];
  const parsed = JSON.parse(stdout) as Array<{ name?: unknown }>;
  return parsed.flatMap((e) => (typeof e.name === "string" ? [e.name] : []));
}

/** An empty observation: a namespace that does not exist (or exists with nothing in it). */
export function emptyObservation(netns: string, exists: boolean): ObservedNamespace {
  return { netns, exists, links: new Map(), routes: [], sysctls: new Map(), rules: new Set() };
}

/** A stable identity for a firewall rule, used to match observation to spec. */
export function ruleKey(r: FirewallRule): string {
  return `${r.table} ${r.chain} ${r.spec.join(" ")}`;
}

/** Observes the namespaces of the given specs (at most `concurrency` commands at once). */
export async function observeNamespaces(
  specs: readonly NamespaceSpec[],
  existing: ReadonlySet<string>,
  concurrency = 6,
): Promise<ObservedNamespace[]> {
  return mapLimit(specs, concurrency, (spec) =>
    existing.has(spec.netns) ? observeNamespace(spec) : Promise.resolve(emptyObservation(spec.netns, false)),
  );
}

/** Observes one existing namespace. */
export async function observeNamespace(spec: NamespaceSpec): Promise<ObservedNamespace> {
  const obs = emptyObservation(spec.netns, true);
  const [links, routes, sysctls, rules] = await Promise.all([
    readLinks(spec.netns),
    readRoutes(spec.netns),
    readSysctls(spec.netns, spec.sysctls.map((s) => s.key)),
    readRules(spec.netns, spec.rules),
  ]);
  for (const l of links) obs.links.set(l.name, l);
  obs.routes = routes;
  obs.sysctls = sysctls;
  obs.rules = rules;
  return obs;
}

interface IpAddrJson {
  ifname?: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

/** Links and their IPv4 addresses in a namespace (`ip -j -d addr show`). */
export async function readLinks(netns: string): Promise<ObservedLink[]> {
  const { stdout } = await run(["ip", "-n", netns, "-j", "-d", "addr", "show"]);
  const parsed = (stdout.trim() ? JSON.parse(stdout) : []) as IpAddrJson[];
  return parsed.flatMap((l): ObservedLink[] => {
    if (typeof l.ifname !== "string") return [];
    return [
      {
        name: l.ifname,
        kind: l.linkinfo?.info_kind,
        mtu: l.mtu ?? 0,
        master: l.master,
        up: l.flags?.includes("UP") ?? false,
        lowerUp: l.flags?.includes("LOWER_UP") ?? false,
        addresses: (l.addr_info ?? [])
          .filter((a) => a.family === "inet" && a.local !== undefined)
          .map((a) => `${a.local}/${a.prefixlen}`),
      },
    ];
  });
}

async function readRoutes(netns: string): Promise<ObservedRoute[]> {
  const { stdout } = await run(["ip", "-n", netns, "-4", "-j", "route", "show"]);
  const parsed = (stdout.trim() ? JSON.parse(stdout) : []) as Array<{ dst?: string; gateway?: string }>;
  return parsed.flatMap((r) => (r.dst ? [{ dst: r.dst, via: r.gateway }] : []));
}

async function readSysctls(netns: string, keys: readonly string[]): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  if (keys.length === 0) return values;
  // -e: keys that do not exist (yet) are skipped instead of failing the whole read.
  const { stdout } = await run(["ip", "netns", "exec", netns, "sysctl", "-e", ...keys], { okExitCodes: [0, 255] });
  for (const line of stdout.split("\n")) {
    const m = /^(\S+) = (.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) values.set(m[1], m[2]);
  }
  return values;
}

async function readRules(netns: string, rules: readonly FirewallRule[]): Promise<Set<string>> {
  const present = new Set<string>();
  // Sequential within a namespace: rule checks are cheap and namespaces already run in parallel.
  for (const r of rules) {
    const argv = ["ip", "netns", "exec", netns, "iptables", "-w", "-t", r.table, "-C", r.chain, ...r.spec];
    const res = await runRaw(argv);
    if (res.exitCode === 0) present.add(ruleKey(r));
    // Exit 1 means "no such rule"; anything else is a real failure.
    else if (res.exitCode !== 1) throw new LabCommandError({ argv, exitCode: res.exitCode, signal: res.signal, stderr: res.stderr });
  }
  return present;
}
