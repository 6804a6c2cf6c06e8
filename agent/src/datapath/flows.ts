/**
 * Flow counters as a host shows them (`weft flows`): the pinned counters map read directly, so
 * it works while the agent is stopped, with identities named from the agent's cached peers. This is
 * the `@weft/agent/flows` entry, so it also re-exports the refused service connections' reader
 * (services/flows.ts), which `weft flows` shows next to them.
 */
import { join } from "node:path";
import { BpfMap, MapName, TypedMap, countersKeyCodec, countersValueCodec } from "@weft/bpf";
import type { PeerRecord } from "@weft/protocol";
import { DatapathError } from "../errors.js";
import { readFlows, type FlowCounters } from "./datapath.js";
import { identityNames, nameOf } from "./names.js";

export { readPinnedRefused, refusedFlowRows } from "../services/flows.js";

export interface FlowRow {
  source: string;
  destination: string;
  sourceId: number;
  destinationId: number;
  packets: number;
  bytes: number;
  /** Dropped packets by reason; empty when nothing was dropped. */
  drops: Record<string, number>;
  /** Set on rows of refused service connections (`<namespace>/<name>`): drops count connections, not packets. */
  service?: string;
}

/** Reads the counters pinned under `pinDir` (root only). */
export function readPinnedFlows(pinDir: string): FlowCounters[] {
  const path = join(pinDir, "maps", MapName.counters);
  let raw: BpfMap;
  try {
    raw = BpfMap.fromPin(path);
  } catch (err) {
    throw new DatapathError(`cannot open the flow counters pinned at ${path} (is the agent's datapath running here, and are you root?): ${(err as Error).message}`, { cause: err });
  }
  try {
    return readFlows({ counters: new TypedMap(raw, countersKeyCodec, countersValueCodec) });
  } finally {
    raw.close();
  }
}

export function flowRows(flows: readonly FlowCounters[], peers: readonly PeerRecord[]): FlowRow[] {
  const names = identityNames(peers);
  return flows.map((f) => ({
    source: nameOf(names, f.srcId),
    destination: nameOf(names, f.dstId),
    sourceId: f.srcId,
    destinationId: f.dstId,
    packets: Number(f.packets),
    bytes: Number(f.bytes),
    drops: Object.fromEntries(Object.entries(f.drops).map(([k, v]) => [k, Number(v)])),
  }));
}
