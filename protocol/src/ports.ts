/**
 * Port intervals of the policy datapath (pure), shared by the controller's compiler and the
 * agent's map sync so both count map entries the same way.
 *
 * - `resolvePortIntervals`: the allow and deny port ranges of one (source, destination, protocol)
 *   become disjoint intervals, each with its final verdict: deny wins wherever a deny covers a
 *   port, allow holds where only allows do, nothing is listed where neither does. Touching
 *   intervals with the same verdict are merged.
 * - `portRangePrefixes`: one interval as the fewest port prefixes (value, bits), what one entry of
 *   the datapath's LPM trie matches. A range of n ports needs at most 2·log2(n) prefixes: 0-65535
 *   is one (/0), 1000-1999 is seven.
 */

/** Every port: an interval that also stands for "any port" (a rule without ports). */
export const ALL_PORTS: Readonly<PortInterval> = { from: 0, to: 65535 };

/** Ports `from`..`to`, both included (0-65535). */
export interface PortInterval {
  from: number;
  to: number;
}

export type PortVerdict = "allow" | "deny";

export interface ResolvedInterval extends PortInterval {
  verdict: PortVerdict;
}

/** One prefix of the port space: the ports whose first `bits` bits equal `port`'s (bits 0 = every port). */
export interface PortPrefix {
  port: number;
  bits: number;
}

/** Sorted, non-overlapping union of `list`, touching intervals merged. */
export function mergeIntervals(list: readonly PortInterval[]): PortInterval[] {
  const sorted = [...list].sort((a, b) => a.from - b.from || a.to - b.to);
  const out: PortInterval[] = [];
  for (const i of sorted) {
    const last = out.at(-1);
    if (last && i.from <= last.to + 1) last.to = Math.max(last.to, i.to);
    else out.push({ from: i.from, to: i.to });
  }
  return out;
}

/**
 * Disjoint intervals with their final verdict (deny wins), sorted by port: the denies merged, and
 * the allows merged less every denied port.
 */
export function resolvePortIntervals(allows: readonly PortInterval[], denies: readonly PortInterval[]): ResolvedInterval[] {
  const deny = mergeIntervals(denies);
  const out: ResolvedInterval[] = deny.map((d) => ({ ...d, verdict: "deny" }));
  for (const a of mergeIntervals(allows)) {
    let from = a.from;
    for (const d of deny) {
      if (d.to < from || d.from > a.to) continue;
      if (d.from > from) out.push({ from, to: d.from - 1, verdict: "allow" });
      from = d.to + 1;
      if (from > a.to) break;
    }
    if (from <= a.to) out.push({ from, to: a.to, verdict: "allow" });
  }
  return out.sort((x, y) => x.from - y.from);
}

/** The fewest prefixes covering exactly `from`..`to` (0 ≤ from ≤ to ≤ 65535), in port order. */
export function portRangePrefixes(from: number, to: number): PortPrefix[] {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > 65535 || from > to) throw new RangeError(`not a port range: ${from}-${to}`);
  const out: PortPrefix[] = [];
  let at = from;
  while (at <= to) {
    // The largest aligned block starting at `at` that stays inside the range.
    let size = at === 0 ? 65536 : at & -at;
    while (at + size - 1 > to) size /= 2;
    out.push({ port: at, bits: 16 - Math.log2(size) });
    at += size;
  }
  return out;
}

/** How many prefixes `portRangePrefixes(from, to)` returns, without building them. */
export function portRangePrefixCount(from: number, to: number): number {
  return portRangePrefixes(from, to).length;
}
