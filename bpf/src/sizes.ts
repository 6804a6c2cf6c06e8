/**
 * How big the tables that grow with traffic are made. They are LRU hashes, which the kernel
 * allocates whole, and zeroes, when it creates them: with the sizes the objects declare (262,144
 * flows) an agent held 118 MiB of kernel memory whatever its traffic, and zeroing it
 * cost CPU at every fresh start (test/bench/README.md, "The tables' kernel memory").
 * One number, the flows a host tracks at once, sizes them all; an LRU table that is full drops its
 * least recently used entry (a reply to a flow idle that long is judged as new traffic).
 */
import { MapName } from "./layout.js";
import { LbMapName } from "./lb-layout.js";
import type { MapSizes } from "./datapath.js";
import { MAX_FLOW_TABLE_ENTRIES, MIN_FLOW_TABLE_ENTRIES } from "./flow-table-limits.js";

/**
 * The entries of each table sized by traffic, for `flows` concurrent flows: one entry per flow in
 * the sent-flow conntrack and the socket load balancer's per-socket and UDP translation tables; a
 * quarter of that (at least 1,024) in those keyed by identity pair or by source and VIP (flow
 * counters, connection rate limits, refusals).
 */
export function flowTableSizes(flows: number): MapSizes {
  if (!Number.isInteger(flows) || flows < MIN_FLOW_TABLE_ENTRIES || flows > MAX_FLOW_TABLE_ENTRIES) {
    throw new RangeError(`flow table entries must be an integer from ${MIN_FLOW_TABLE_ENTRIES} to ${MAX_FLOW_TABLE_ENTRIES}, got ${flows}`);
  }
  const perPair = Math.max(1_024, Math.floor(flows / 4));
  return {
    [MapName.conntrack]: flows,
    [LbMapName.socks]: flows,
    [LbMapName.nat]: flows,
    [LbMapName.rnat]: flows,
    [MapName.counters]: perPair,
    [LbMapName.ratelimit]: perPair,
    [LbMapName.drops]: perPair,
  };
}
