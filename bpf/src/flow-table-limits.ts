/**
 * The range and default of the flows a host tracks at once (flowTableSizes in sizes.ts turns it
 * into table sizes). No imports: the agent's config schema reads these without loading the
 * datapath's layouts or the libbpf binding (`weft up`, `weft status`).
 */

/** The flows a host tracks at once unless told otherwise: ~28 MiB of kernel memory (~450 B per flow). */
export const DEFAULT_FLOW_TABLE_ENTRIES = 65_536;
export const MIN_FLOW_TABLE_ENTRIES = 4_096;
export const MAX_FLOW_TABLE_ENTRIES = 1_048_576;
