/**
 * Remapped prefixes for overlapping site networks (pure). When a network of one site overlaps a
 * network of another (e.g. 10.10.0.0/16 in aws and in azure), each such CIDR gets a prefix of the
 * same size from the pool (`inventory.remapPool`): the other sites route to the remapped prefix,
 * and the site's gateway translates it 1:1 to the real range and back (NETMAP), so a host in aws
 * reaches azure's 10.10.0.5 at, say, 100.97.0.5 and its own 10.10.0.5 directly.
 *
 * Assignments are sticky: a (site, CIDR) keeps the prefix it had (read back from the gateways'
 * node records) while that prefix is still inside the pool and clashes with nothing; new ones take
 * the lowest free aligned prefix. A prefix never overlaps another assignment, any network in
 * the inventory or the overlay's own ranges. Overlaps inside one site are not remapped (one gateway cannot tell the two
 * ranges apart); they stay withheld.
 */
import { cidrSize, cidrsOverlap, formatCidr, formatIpv4, parseCidr, type InventoryOverlap, type Ipv4Cidr } from "@weft/protocol";

export interface RemapInput {
  /** Overlaps between networks (routes.ts); only those across sites are remapped. */
  overlaps: readonly InventoryOverlap[];
  /** Every CIDR in the inventory: a remapped prefix must not collide with a real network. */
  inventoryCidrs: readonly string[];
  /**
   * The overlay's own ranges (node, workload, service): never handed out, even from a pool that
   * overlaps one (config refuses such a pool; this keeps the plan right whatever it is given).
   */
  reserved?: readonly string[];
  /** The pool; undefined or "" turns remapping off. */
  pool: string | undefined;
  /** Assignments in use now (from node records), by remapKey. */
  previous: ReadonlyMap<string, string>;
}

export interface RemapPlan {
  /** site → (real CIDR → remapped prefix). */
  bySite: Map<string, Map<string, string>>;
  /** CIDRs that needed a prefix the pool could not give, with the reason. */
  unassigned: { site: string; cidr: string; reason: string }[];
}

export function remapKey(site: string, cidr: string): string {
  return `${site}\u0000${cidr}`;
}

export function planRemaps(input: RemapInput): RemapPlan {
  const bySite = new Map<string, Map<string, string>>();
  const unassigned: RemapPlan["unassigned"] = [];
  const pool = input.pool ? parseCidr(input.pool) : undefined;
  const need = new Map<string, { site: string; cidr: string }>();
  for (const o of input.overlaps) {
    if (o.sameSite) continue;
    for (const side of [o.a, o.b]) for (const site of side.site.split(",")) need.set(remapKey(site, side.cidr), { site, cidr: side.cidr });
  }
  if (need.size === 0) return { bySite, unassigned };
  if (!pool) {
    for (const n of need.values()) unassigned.push({ ...n, reason: "remapping is off (inventory.remapPool is empty)" });
    return { bySite, unassigned };
  }
  const real = [...input.inventoryCidrs, ...(input.reserved ?? [])].flatMap((c) => parseCidr(c) ?? []);
  const taken: Ipv4Cidr[] = [];
  const free = (c: Ipv4Cidr) => inside(c, pool) && !real.some((r) => cidrsOverlap(r, c)) && !taken.some((t) => cidrsOverlap(t, c));
  const assign = (n: { site: string; cidr: string }, to: Ipv4Cidr) => {
    taken.push(to);
    let m = bySite.get(n.site);
    if (!m) bySite.set(n.site, (m = new Map()));
    m.set(n.cidr, formatCidr(to));
  };
  const ordered = [...need.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  // Sticky first, so a new overlap never takes a prefix someone already uses.
  const fresh: { site: string; cidr: string }[] = [];
  for (const [key, n] of ordered) {
    const prev = input.previous.get(key);
    const prevCidr = prev ? parseCidr(prev) : undefined;
    const size = parseCidr(n.cidr)?.prefixLength;
    if (prevCidr && prevCidr.prefixLength === size && free(prevCidr)) assign(n, prevCidr);
    else fresh.push(n);
  }
  for (const n of fresh) {
    const c = parseCidr(n.cidr);
    if (!c) continue;
    if (c.prefixLength < pool.prefixLength) {
      unassigned.push({ ...n, reason: `${n.cidr} is larger than the remap pool ${input.pool}` });
      continue;
    }
    const step = cidrSize(c);
    let got: Ipv4Cidr | undefined;
    for (let at = pool.network; at < pool.network + cidrSize(pool); at += step) {
      const candidate = { network: at >>> 0, prefixLength: c.prefixLength };
      if (free(candidate)) {
        got = candidate;
        break;
      }
    }
    if (got) assign(n, got);
    else unassigned.push({ ...n, reason: `no free /${c.prefixLength} left in the remap pool ${input.pool}` });
  }
  return { bySite, unassigned };
}

function inside(c: Ipv4Cidr, pool: Ipv4Cidr): boolean {
  return c.prefixLength >= pool.prefixLength && c.network >= pool.network && c.network + cidrSize(c) <= pool.network + cidrSize(pool);
}

/** The address `ip` of a real range seen through its remapped prefix (same host bits). */
export function remappedAddress(ip: string, real: string, remapped: string): string | undefined {
  const r = parseCidr(real);
  const m = parseCidr(remapped);
  const a = parseCidr(`${ip}/32`);
  if (!r || !m || !a || r.prefixLength !== m.prefixLength) return undefined;
  const hostBits = a.network - r.network;
  if (hostBits < 0 || hostBits >= cidrSize(r)) return undefined;
  return formatIpv4((m.network + hostBits) >>> 0);
}
