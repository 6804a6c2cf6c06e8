/**
 * Reads the kernel's view of one interface through `ip -json`: link (ifindex, kind, MTU, up),
 * its addresses, and the main-table routes through it. Parsers are pure and exported for tests.
 */
import { canonicalAddress, canonicalPrefix } from "./cidr.js";
import { CommandError } from "../exec/errors.js";
import { OutputParseError } from "./errors.js";
import type { CommandRunner } from "../exec/runner.js";

export interface LinkState {
  name: string;
  ifindex: number;
  /** `linkinfo.info_kind`: "wireguard" (kernel), "tun" (wireguard-go), or anything else. */
  kind: string | undefined;
  mtu: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Global/site-scope addresses, canonical `ip/len`; kernel link-local addresses are left out. */
  addresses: string[];
}

export interface RouteState {
  /** Canonical prefix (`default` becomes 0.0.0.0/0 or ::/0). */
  dst: string;
  /** `protocol` as ip prints it ("kernel", "boot" when omitted, or a number such as "87"). */
  protocol: string;
}

interface IpAddrJson {
  ifindex?: unknown;
  ifname?: unknown;
  flags?: unknown;
  mtu?: unknown;
  linkinfo?: { info_kind?: unknown };
  addr_info?: Array<{ family?: unknown; local?: unknown; prefixlen?: unknown; scope?: unknown }>;
}

/** Parses `ip -details -json addr show dev NAME`. */
export function parseLinkJson(text: string): LinkState {
  const parsed = parseJsonArray(text, "ip -json addr show") as IpAddrJson[];
  const link = parsed[0];
  if (link === undefined || typeof link.ifindex !== "number" || typeof link.ifname !== "string" || typeof link.mtu !== "number") {
    throw new OutputParseError(`ip -json addr show: unexpected output: ${text.slice(0, 200)}`);
  }
  const flags = Array.isArray(link.flags) ? link.flags : [];
  const addresses: string[] = [];
  for (const a of link.addr_info ?? []) {
    if (typeof a.local !== "string" || typeof a.prefixlen !== "number") continue;
    if (a.scope === "link" || a.scope === "host") continue;
    addresses.push(canonicalAddress(`${a.local}/${a.prefixlen}`));
  }
  const kind = link.linkinfo?.info_kind;
  return {
    name: link.ifname,
    ifindex: link.ifindex,
    kind: typeof kind === "string" ? kind : undefined,
    mtu: link.mtu,
    up: flags.includes("UP"),
    addresses,
  };
}

/** Parses `ip -json [-6] route show table main dev NAME` for one address family. */
export function parseRoutesJson(text: string, family: 4 | 6): RouteState[] {
  const parsed = parseJsonArray(text, "ip -json route show") as Array<{ dst?: unknown; protocol?: unknown; type?: unknown }>;
  const routes: RouteState[] = [];
  for (const r of parsed) {
    if (typeof r.dst !== "string") continue;
    if (typeof r.type === "string" && r.type !== "unicast") continue;
    const dst = r.dst === "default" ? (family === 4 ? "0.0.0.0/0" : "::/0") : canonicalPrefix(r.dst);
    routes.push({ dst, protocol: typeof r.protocol === "string" ? r.protocol : "boot" });
  }
  return routes;
}

function parseJsonArray(text: string, what: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim() === "" ? "[]" : text);
  } catch (err) {
    throw new OutputParseError(`${what}: output is not JSON: ${text.slice(0, 200)}`, { cause: err });
  }
  if (!Array.isArray(parsed)) throw new OutputParseError(`${what}: expected a JSON array: ${text.slice(0, 200)}`);
  return parsed;
}

/** The link's state, or undefined if no link of that name exists (in the runner's namespace). */
export async function readLink(runner: CommandRunner, name: string): Promise<LinkState | undefined> {
  let stdout: string;
  try {
    ({ stdout } = await runner.run(["ip", "-details", "-json", "addr", "show", "dev", name]));
  } catch (err) {
    // iproute2 has no distinct exit code for a missing device; its message is the only signal.
    if (err instanceof CommandError && /does not exist/.test(err.stderr)) return undefined;
    throw err;
  }
  return parseLinkJson(stdout);
}

/** IPv4 and IPv6 routes of the main table whose device is `name`. */
export async function readRoutes(runner: CommandRunner, name: string): Promise<RouteState[]> {
  const [v4, v6] = await Promise.all([
    runner.run(["ip", "-json", "-4", "route", "show", "table", "main", "dev", name]),
    runner.run(["ip", "-json", "-6", "route", "show", "table", "main", "dev", name]),
  ]);
  return [...parseRoutesJson(v4.stdout, 4), ...parseRoutesJson(v6.stdout, 6)];
}
