/**
 * Flow records from the counters map (pure): the eBPF counters are cumulative per identity pair,
 * so each interval's record is the difference from the previous read. A pair whose counters went
 * down (its entry was deleted and made again) starts over from zero; pairs that did not change
 * give no record.
 */
import { FLOW_REPORT_MAX_RECORDS, type FlowRecord } from "@weft/protocol";
import type { FlowCounters } from "../datapath/datapath.js";
import { nameOf, type IdentityNames } from "../datapath/names.js";

/** The last counters read, per pair (`src/dst`). */
export type FlowBaseline = Map<string, FlowCounters>;

const pairKey = (f: Pick<FlowCounters, "srcId" | "dstId">) => `${f.srcId}/${f.dstId}`;

/** The records of one interval and the baseline for the next. */
export function flowRecords(baseline: FlowBaseline, current: readonly FlowCounters[], names: IdentityNames, start: Date, end: Date): { records: FlowRecord[]; next: FlowBaseline } {
  const next: FlowBaseline = new Map();
  const records: FlowRecord[] = [];
  for (const f of current) {
    next.set(pairKey(f), f);
    const before = baseline.get(pairKey(f));
    const reset = before !== undefined && (f.packets < before.packets || f.bytes < before.bytes);
    const base = before === undefined || reset ? undefined : before;
    const packets = f.packets - (base?.packets ?? 0n);
    if (packets <= 0n) continue;
    const drops: Record<string, number> = {};
    let dropped = 0n;
    for (const [reason, n] of Object.entries(f.drops)) {
      const d = n - (base?.drops[reason] ?? 0n);
      if (d > 0n) {
        drops[reason] = Number(d);
        dropped += d;
      }
    }
    records.push({
      source: nameOf(names, f.srcId),
      destination: nameOf(names, f.dstId),
      sourceId: f.srcId,
      destinationId: f.dstId,
      start: start.toISOString(),
      end: end.toISOString(),
      packets: Number(packets),
      bytes: Number(f.bytes - (base?.bytes ?? 0n)),
      verdict: dropped === 0n ? "forwarded" : dropped >= packets ? "dropped" : "mixed",
      drops,
    });
  }
  return { records, next };
}

/** At most `max` records for the controller: the largest by bytes (drops first among equals), and how many were left out. */
export function boundedForReport(records: readonly FlowRecord[], max = FLOW_REPORT_MAX_RECORDS): { flows: FlowRecord[]; omitted: number } {
  if (records.length <= max) return { flows: [...records], omitted: 0 };
  const ranked = [...records].sort((a, b) => b.bytes - a.bytes || Object.keys(b.drops).length - Object.keys(a.drops).length);
  return { flows: ranked.slice(0, max), omitted: records.length - max };
}
