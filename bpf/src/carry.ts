/**
 * Counters carried across a map's replacement: when an upgrade replaces a per-CPU counters map by
 * one with the same key and value layout and a single value for all CPUs (RETIRED_MAPS with
 * `carryCounters`), the new map starts with the old one's totals instead of zero, so `weft flows`
 * and the flow exporter see no reset. Counts the old programs add between the copy and the attach
 * of the new programs are not carried (a few milliseconds of traffic).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RETIRED_MAPS } from "./layout.js";
import { BpfMap } from "./map.js";
import type { PinOutcome } from "./datapath.js";

/** Entries written per batch update. */
const BATCH = 4096;

/**
 * Copies every entry of the per-CPU map `from` into `into`, each value the lane-by-lane sum of its
 * per-CPU values read as little-endian u64 counters. Returns the entries copied. Throws a
 * TypeError when the two maps do not have that relation.
 */
export function carryPerCpuCounters(from: BpfMap, into: BpfMap): number {
  const { keySize, valueSize } = into.info;
  if (!from.perCpu || into.perCpu) throw new TypeError(`cannot carry counters from ${from.name} into ${into.name}: need a per-CPU map into a shared-value one`);
  if (from.info.keySize !== keySize || from.info.valueSize !== valueSize || valueSize % 8 !== 0) {
    throw new TypeError(`cannot carry counters from ${from.name} into ${into.name}: key/value sizes ${from.info.keySize}/${from.info.valueSize} vs ${keySize}/${valueSize} (u64 fields only)`);
  }
  const cpus = from.valueBufferSize / valueSize;
  let keys: Buffer[] = [];
  let values: Buffer[] = [];
  let copied = 0;
  const flush = () => {
    into.updateBatch(keys, values);
    copied += keys.length;
    keys = [];
    values = [];
  };
  for (const chunk of from.entryChunks()) {
    for (let i = 0; i < chunk.count; i++) {
      const perCpu = chunk.values.subarray(i * from.valueBufferSize, (i + 1) * from.valueBufferSize);
      const sum = Buffer.alloc(valueSize);
      for (let lane = 0; lane < valueSize; lane += 8) {
        let total = 0n;
        for (let cpu = 0; cpu < cpus; cpu++) total += perCpu.readBigUInt64LE(cpu * valueSize + lane);
        sum.writeBigUInt64LE(BigInt.asUintN(64, total), lane);
      }
      keys.push(Buffer.from(chunk.keys.subarray(i * keySize, (i + 1) * keySize)));
      values.push(sum);
      if (keys.length === BATCH) flush();
    }
  }
  if (keys.length > 0) flush();
  return copied;
}

/** What carrying did for one new map: the entries copied, or why it could not. */
export type CarryOutcome = { carried: number } | { failed: Error };

/**
 * For every map opening just created (`outcome` "created") that replaced a retired counters map
 * still pinned in `mapsDir`, carries the retired map's totals into it. `mapOf` gives the new map by
 * name. Never throws: a carry that fails leaves the new map starting from zero (what a reboot does
 * too) and is reported, per new map's name, with the others that copied anything.
 */
export function carryRetiredCounters(mapsDir: string, outcome: Readonly<Record<string, PinOutcome>>, mapOf: (name: string) => BpfMap): Record<string, CarryOutcome> {
  const result: Record<string, CarryOutcome> = {};
  for (const retired of RETIRED_MAPS) {
    if (!retired.carryCounters || outcome[retired.replacedBy] !== "created") continue;
    const oldPath = join(mapsDir, retired.name);
    if (!existsSync(oldPath)) continue;
    try {
      const old = BpfMap.fromPin(oldPath);
      try {
        result[retired.replacedBy] = { carried: carryPerCpuCounters(old, mapOf(retired.replacedBy)) };
      } finally {
        old.close();
      }
    } catch (err) {
      result[retired.replacedBy] = { failed: new Error(`cannot carry the counters of ${oldPath} into ${retired.replacedBy}: ${(err as Error).message}`, { cause: err }) };
    }
  }
  return result;
}
