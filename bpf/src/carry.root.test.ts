/**
 * Root: counters carried across the per-CPU → shared-value map replacement (weft_counters →
 * weft_counters_v2, weft_lb_drops → weft_lb_drops_v2). An agent that finds an older build's pins
 * opens the new maps with the old totals in them, summed over CPUs, and unpins the old maps once
 * asked to. Needs CAP_BPF/CAP_NET_ADMIN and a bpffs of its own (mounted in a temporary directory).
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { carryPerCpuCounters } from "./carry.js";
import { TcDatapath } from "./datapath.js";
import { COUNTERS_DROP_SLOTS, DropReason, MapName, countersKeyCodec, countersValueCodec, zeroCounters, type CountersValue } from "./layout.js";
import { LbMapName, lbDropsValueCodec, lbRateKeyCodec } from "./lb-layout.js";
import { BpfMap, MapType, PerCpuMap, TypedMap, numPossibleCpus } from "./map.js";
import { mountScratchBpffs, type ScratchBpffs } from "./scratch-bpffs.js";
import { SockDatapath } from "./sock.js";

const isRoot = process.getuid?.() === 0;

/** A per-CPU map shaped like an older build's counters map, with `perCpu(cpu)` written for each key on each CPU. */
function oldCountersMap(name: string, keys: { srcId: number; dstId: number }[], perCpu: (cpu: number, i: number) => CountersValue): PerCpuMap<{ srcId: number; dstId: number }, CountersValue> {
  const raw = BpfMap.create({ type: MapType.lruPercpuHash, name, keySize: countersKeyCodec.size, valueSize: countersValueCodec.size, maxEntries: 8192 });
  const map = new PerCpuMap(raw, countersKeyCodec, countersValueCodec);
  const cpus = numPossibleCpus();
  keys.forEach((k, i) => {
    const buf = Buffer.alloc(raw.valueBufferSize);
    for (let cpu = 0; cpu < cpus; cpu++) countersValueCodec.encode(perCpu(cpu, i)).copy(buf, cpu * countersValueCodec.size);
    raw.update(countersKeyCodec.encode(k), buf);
  });
  return map;
}

const value = (packets: number, bytes: number, drop: { reason: number; n: number } | undefined = undefined): CountersValue => {
  const v = zeroCounters();
  v.packets = BigInt(packets);
  v.bytes = BigInt(bytes);
  if (drop) v.drops[drop.reason] = BigInt(drop.n);
  return v;
};

describe.skipIf(!isRoot)("bpf - counters carried into the maps that replaced the per-CPU ones", () => {
  it("bpf - carryPerCpuCounters sums every field over the CPUs, for every entry, beyond one batch", () => {
    const cpus = numPossibleCpus();
    const keys = Array.from({ length: 5000 }, (_, i) => ({ srcId: 1000 + i, dstId: 7 }));
    const old = oldCountersMap("wbt_carry_old", keys, (cpu, i) => value(i + cpu + 1, 100 * (cpu + 1), { reason: DropReason.policyDeny, n: cpu + 1 }));
    const into = new TypedMap(BpfMap.create({ type: MapType.lruHash, name: "wbt_carry_new", keySize: 8, valueSize: 80, maxEntries: 8192 }), countersKeyCodec, countersValueCodec);
    try {
      expect(carryPerCpuCounters(old.raw, into.raw), "entries copied").toBe(5000);
      const sumCpu = (f: (cpu: number) => number) => BigInt(Array.from({ length: cpus }, (_, cpu) => f(cpu)).reduce((a, b) => a + b, 0));
      for (const i of [0, 1, 4095, 4096, 4999]) {
        const got = into.get(keys[i]!);
        expect(got?.packets, `packets of entry ${i}`).toBe(sumCpu((cpu) => i + cpu + 1));
        expect(got?.bytes, `bytes of entry ${i}`).toBe(sumCpu((cpu) => 100 * (cpu + 1)));
        expect(got?.drops[DropReason.policyDeny], `policy-deny drops of entry ${i}`).toBe(sumCpu((cpu) => cpu + 1));
        expect(got?.drops.filter((d, slot) => slot !== DropReason.policyDeny && d !== 0n), "other slots").toEqual([]);
      }
      expect(() => carryPerCpuCounters(into.raw, old.raw), "the wrong way round").toThrow(TypeError);
      const narrow = BpfMap.create({ type: MapType.lruHash, name: "wbt_carry_bad", keySize: 8, valueSize: 64, maxEntries: 16 });
      try {
        expect(() => carryPerCpuCounters(old.raw, narrow), "another value size").toThrow(/key\/value sizes 8\/80 vs 8\/64/);
      } finally {
        narrow.close();
      }
    } finally {
      old.raw.close();
      into.raw.close();
    }
  });

  describe("bpf - an upgrade from a build with per-CPU counters", () => {
    let bpffs: ScratchBpffs | undefined;
    let pinDir: string;
    const maps = () => join(pinDir, "maps");

    beforeAll(() => {
      bpffs = mountScratchBpffs("wbt-carryfs-");
      pinDir = bpffs.pinDir;
    });
    afterAll(() => bpffs?.remove());

    it("bpf - open creates the new maps with the old totals, the old pins stay until removeRetiredPins, and a later open reuses without carrying again", () => {
      // Everything this build pins, then what an older build had instead of the two new maps.
      TcDatapath.open({ pinDir }).close();
      SockDatapath.open({ pinDir }).close();
      rmSync(join(maps(), MapName.counters));
      rmSync(join(maps(), LbMapName.drops));
      const pair = { srcId: 300, dstId: 400 };
      const counters = oldCountersMap("weft_counters", [pair], (cpu) => value(10 * (cpu + 1), 1000, { reason: DropReason.defaultDeny, n: 2 }));
      counters.raw.pin(join(maps(), "weft_counters"));
      counters.raw.close();
      const dropsRaw = BpfMap.create({ type: MapType.lruPercpuHash, name: "weft_lb_drops", keySize: lbRateKeyCodec.size, valueSize: lbDropsValueCodec.size, maxEntries: 1024 });
      const refusedKey = { srcId: 300, vip: "100.96.0.1" };
      const dropsBuf = Buffer.alloc(dropsRaw.valueBufferSize);
      for (let cpu = 0; cpu < numPossibleCpus(); cpu++) {
        const d = Array.from({ length: COUNTERS_DROP_SLOTS }, () => 0n);
        d[DropReason.rateLimited] = 3n;
        lbDropsValueCodec.encode({ drops: d }).copy(dropsBuf, cpu * lbDropsValueCodec.size);
      }
      dropsRaw.update(lbRateKeyCodec.encode(refusedKey), dropsBuf);
      dropsRaw.pin(join(maps(), "weft_lb_drops"));
      dropsRaw.close();

      const cpus = BigInt(numPossibleCpus());
      const dp = TcDatapath.open({ pinDir });
      const sock = SockDatapath.open({ pinDir });
      try {
        expect(dp.pinOutcome[MapName.counters], "the new counters map").toBe("created");
        // The tc fallback counts refusals too: the first open (tc) creates both new maps and carries both.
        expect(dp.carried, "what the tc open carried").toEqual({ [MapName.counters]: { carried: 1 }, [LbMapName.drops]: { carried: 1 } });
        expect([sock.pinOutcome[LbMapName.drops], sock.carried], "the socket open reuses the drops map, carrying nothing again").toEqual(["reused", {}]);
        const got = dp.counters.get(pair);
        expect([got?.packets, got?.bytes, got?.drops[DropReason.defaultDeny]], "packets, bytes, default-deny drops").toEqual([(10n * cpus * (cpus + 1n)) / 2n, 1000n * cpus, 2n * cpus]);
        expect(sock.drops.get(refusedKey)?.drops[DropReason.rateLimited], "refused connections").toBe(3n * cpus);
        expect(existsSync(join(maps(), "weft_counters")) && existsSync(join(maps(), "weft_lb_drops")), "the old pins stay until the new maps are attached").toBe(true);
        expect(dp.removeRetiredPins().sort(), "removed").toEqual(["weft_counters", "weft_lb_drops"]);
        expect(existsSync(join(maps(), "weft_counters")) || existsSync(join(maps(), "weft_lb_drops")), "old pins after removeRetiredPins").toBe(false);
      } finally {
        sock.close();
        dp.close();
      }
      const again = TcDatapath.open({ pinDir });
      try {
        expect(again.pinOutcome[MapName.counters], "next start").toBe("reused");
        expect(again.carried, "nothing carried twice").toEqual({});
        expect(again.counters.get(pair)?.packets, "the carried totals kept").toBe((10n * cpus * (cpus + 1n)) / 2n);
      } finally {
        again.close();
      }
    });
  });
});
