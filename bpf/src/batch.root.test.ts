/**
 * Root: batch iteration (BPF_MAP_LOOKUP_BATCH) against key-by-key iteration (get_next_key +
 * lookup) on maps created for the test: hash, LRU hash, per-CPU hash, LRU per-CPU hash, array and
 * LPM trie, with thousands of entries, and the fallback for a type without batch ops (devmap). Prints µs per entry
 * for both ways; no timing is asserted. Needs CAP_BPF.
 */
import { afterAll, describe, expect, it } from "vitest";
import { BpfError } from "./errors.js";
import { countersKeyCodec, countersValueCodec, ipcacheKeyCodec, ipcacheValueCodec, policyKeyCodec, policyValueCodec, type CountersValue } from "./layout.js";
import { BpfMap, MapFlag, MapType, PerCpuMap, TypedMap, numPossibleCpus } from "./map.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log("bpf - batch iteration root tests skipped: they need root (run `npx vitest run --project root` as root)");

/** A canonical string for a decoded key or value (object keys sorted, bigints included), to sort by. */
const str = (v: unknown): string =>
  JSON.stringify(v, (_, x: unknown) =>
    typeof x === "bigint" ? `${x}n` : x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
  );
const sorted = <T>(entries: Iterable<T>): T[] =>
  [...entries]
    .map((e) => [str(e), e] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, e]) => e);

/** Runs `walk` once to warm up, then three times; returns the entries and the best µs per entry (the least disturbed run). */
function timed<T>(walk: () => Iterable<T>): { got: T[]; usPerEntry: number } {
  let got = Array.from(walk());
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const t0 = process.hrtime.bigint();
    got = Array.from(walk());
    best = Math.min(best, Number(process.hrtime.bigint() - t0));
  }
  return { got, usPerEntry: got.length ? best / 1000 / got.length : 0 };
}

function compare<T>(what: string, batch: () => Iterable<T>, byKey: () => Iterable<T>, want: number): void {
  const b = timed(batch);
  const k = timed(byKey);
  console.log(`bpf - ${what}: ${want} entries, batch ${b.usPerEntry.toFixed(2)} µs/entry, key by key ${k.usPerEntry.toFixed(2)} µs/entry`);
  expect(b.got.length, `${what}: batch entries: got ${b.got.length}, want ${want}`).toBe(want);
  expect(k.got.length, `${what}: key-by-key entries: got ${k.got.length}, want ${want}`).toBe(want);
  expect(sorted(b.got), `${what}: batch and key-by-key iteration agree`).toEqual(sorted(k.got));
}

describe.skipIf(!isRoot)("bpf - batch iteration", () => {
  const maps: BpfMap[] = [];
  const create = (...args: Parameters<typeof BpfMap.create>): BpfMap => {
    const m = BpfMap.create(...args);
    maps.push(m);
    return m;
  };

  afterAll(() => {
    for (const m of maps) m.close();
  });

  it("bpf - batch and key-by-key iteration agree on a hash map of 20000 policy entries", () => {
    const raw = create({ type: MapType.hash, name: "wbt_batch_hash", keySize: policyKeyCodec.size, valueSize: policyValueCodec.size, maxEntries: 65536 });
    const policy = new TypedMap(raw, policyKeyCodec, policyValueCodec);
    expect(raw.supportsBatchLookup, "hash maps have batch lookup").toBe(true);
    const n = 20_000;
    const entries = Array.from({ length: n }, (_, i) => [{ srcId: 100 + (i % 97), dstId: 1000 + i, proto: 6, port: 1 + (i % 60000), portBits: 16 }, { verdict: i % 3 ? "allow" : "deny" }] as const);
    policy.setMany(entries);
    compare("hash (typed, 16 B key, 4 B value)", () => policy.entriesBatch(), () => policy.entriesByKey(), n);
    expect(sorted(policy.entries()), "entries() (batch) holds what was written").toEqual(sorted(entries.map(([k, v]) => [k, v])));
  });

  it("bpf - batch iteration with a chunk of 1 grows past crowded hash buckets (ENOSPC) and misses nothing", () => {
    const raw = create({ type: MapType.hash, name: "wbt_batch_small", keySize: 4, valueSize: 4, maxEntries: 4096 });
    const n = 3000; // 3000 keys in 4096 buckets: many buckets hold two or more
    raw.updateBatch(
      Array.from({ length: n }, (_, i) => u32(i * 7919)),
      Array.from({ length: n }, (_, i) => u32(i)),
    );
    for (const chunk of [1, 7, 4096]) {
      const got = [...raw.lookupBatch({ chunk })].map(([k, v]) => [k.readUInt32LE(), v.readUInt32LE()]);
      expect(got.length, `chunk ${chunk}: entries: got ${got.length}, want ${n}`).toBe(n);
      expect(new Set(got.map(([k]) => k)).size, `chunk ${chunk}: distinct keys`).toBe(n);
      for (const [k, v] of got) expect(k, `chunk ${chunk}: key of value ${v}`).toBe(((v ?? 0) * 7919) >>> 0);
    }
  });

  it("bpf - batch and key-by-key iteration agree on an LRU hash map", () => {
    const raw = create({ type: MapType.lruHash, name: "wbt_batch_lru", keySize: 4, valueSize: 8, maxEntries: 16384 });
    const n = 5000;
    raw.updateBatch(
      Array.from({ length: n }, (_, i) => u32(i + 1)),
      Array.from({ length: n }, (_, i) => u64(BigInt(i) * 1_000_003n)),
    );
    const hex = (it: Iterable<[Buffer, Buffer]>) => [...it].map(([k, v]) => [k.toString("hex"), v.toString("hex")]);
    compare("LRU hash (raw, 4 B key, 8 B value)", () => hex(raw.lookupBatch()), () => hex(raw.lookupByKey()), n);
  });

  it("bpf - batch and key-by-key iteration agree on per-CPU hash maps, with every CPU's value in its slot", () => {
    const cpus = numPossibleCpus();
    for (const type of [MapType.percpuHash, MapType.lruPercpuHash]) {
      const raw = create({ type, name: `wbt_batch_pc${type}`, keySize: countersKeyCodec.size, valueSize: countersValueCodec.size, maxEntries: 65536 });
      expect(raw.valueBufferSize, "per-CPU value buffer: 80 B × possible CPUs").toBe(80 * cpus);
      const counters = new PerCpuMap(raw, countersKeyCodec, countersValueCodec);
      const n = 5000;
      // A different value on every CPU, so a slot read from the wrong offset shows.
      const value = (i: number, cpu: number): CountersValue => ({
        packets: BigInt(i * 10 + cpu),
        bytes: BigInt(i * 1500 + cpu),
        drops: Array.from({ length: 8 }, (_, d) => (d === 0 ? 0n : BigInt(i + d * 1000 + cpu * 100_000))),
      });
      const keys = Array.from({ length: n }, (_, i) => countersKeyCodec.encode({ srcId: 1 + (i % 50), dstId: 10_000 + i }));
      const values = Array.from({ length: n }, (_, i) => Buffer.concat(Array.from({ length: cpus }, (_, cpu) => countersValueCodec.encode(value(i, cpu)))));
      raw.updateBatch(keys, values);
      compare(`per-CPU hash type ${type} (typed counters, 80 B × ${cpus} CPUs)`, () => counters.entriesBatch(), () => counters.entriesByKey(), n);
      for (const [k, perCpu] of counters.entries()) {
        const i = k.dstId - 10_000;
        expect(perCpu, `counters of ${str(k)}: one value per CPU, each its own`).toEqual(Array.from({ length: cpus }, (_, cpu) => value(i, cpu)));
      }
    }
  });

  it("bpf - per-CPU values whose size is not a multiple of 8 are read at 8-byte strides in batches", () => {
    const cpus = numPossibleCpus();
    const raw = create({ type: MapType.percpuHash, name: "wbt_batch_pc12", keySize: 4, valueSize: 12, maxEntries: 4096 });
    expect(raw.valueBufferSize, "12 B rounds up to 16 per CPU").toBe(16 * cpus);
    const n = 2000;
    const val = (i: number, cpu: number) => {
      const b = Buffer.alloc(16);
      b.writeUInt32LE(i, 0);
      b.writeUInt32LE(cpu, 4);
      b.writeUInt32LE(0xabcd0000 + i, 8);
      return b;
    };
    raw.updateBatch(
      Array.from({ length: n }, (_, i) => u32(i)),
      Array.from({ length: n }, (_, i) => Buffer.concat(Array.from({ length: cpus }, (_, cpu) => val(i, cpu)))),
    );
    // Only the 12 value bytes of each CPU's slot carry data.
    const slots = (v: Buffer) => Array.from({ length: cpus }, (_, cpu) => v.subarray(cpu * 16, cpu * 16 + 12).toString("hex"));
    const batch = [...raw.lookupBatch({ chunk: 333 })].map(([k, v]) => [k.readUInt32LE(), slots(v)] as const);
    expect(batch.length, `entries: got ${batch.length}, want ${n}`).toBe(n);
    for (const [i, s] of batch) expect(s, `key ${i}`).toEqual(Array.from({ length: cpus }, (_, cpu) => val(i, cpu).subarray(0, 12).toString("hex")));
  });

  it("bpf - an array map iterates every index by batch, the same as key by key", () => {
    const raw = create({ type: MapType.array, name: "wbt_batch_arr", keySize: 4, valueSize: 8, maxEntries: 3000 });
    for (let i = 0; i < 3000; i += 3) raw.update(u32(i), u64(BigInt(i) << 20n));
    const hex = (it: Iterable<[Buffer, Buffer]>) => [...it].map(([k, v]) => [k.toString("hex"), v.toString("hex")]);
    compare("array (raw, 3000 slots)", () => hex(raw.lookupBatch()), () => hex(raw.lookupByKey()), 3000);
  });

  it("bpf - batch and key-by-key iteration agree on an LPM trie of 10000 ipcache prefixes", () => {
    const raw = create({ type: MapType.lpmTrie, name: "wbt_batch_lpm", keySize: ipcacheKeyCodec.size, valueSize: ipcacheValueCodec.size, maxEntries: 65536, flags: MapFlag.noPrealloc });
    const ipcache = new TypedMap(raw, ipcacheKeyCodec, ipcacheValueCodec);
    const n = 10_000;
    const entries = Array.from({ length: n }, (_, i) => {
      const prefixlen = i % 2 ? 32 : 24;
      return [{ addr: `10.${(i >> 8) & 255}.${i & 255}.${prefixlen === 32 ? 7 : 0}`, prefixlen }, { identity: 256 + i }] as const;
    });
    ipcache.setMany(entries);
    compare("LPM trie (typed ipcache, batch since kernel 5.17)", () => ipcache.entriesBatch(), () => ipcache.entriesByKey(), n);
    expect(raw.supportsBatchLookup, "this kernel has batch lookup for LPM tries").toBe(true);
    expect(sorted(ipcache.entries()), "entries() holds what was written").toEqual(sorted(entries.map(([k, v]) => [k, v])));
  });

  it("bpf - a map type without batch lookup (devmap): lookupBatch throws ENOTSUPP, entries() goes key by key", () => {
    const raw = create({ type: 14 /* DEVMAP */, name: "wbt_batch_dev", keySize: 4, valueSize: 4, maxEntries: 64 });
    const devmap = new TypedMap(raw, u32Codec, u32Codec);
    for (let i = 0; i < 64; i += 2) devmap.set(i, 1); // lo
    const want = Array.from({ length: 32 }, (_, i) => [2 * i, 1]);
    expect(sorted(devmap.entries()), "entries() of a devmap, before any batch attempt").toEqual(sorted(want));
    let err: unknown;
    try {
      Array.from(raw.lookupBatch());
    } catch (e) {
      err = e;
    }
    expect(err, "lookupBatch on a devmap").toBeInstanceOf(BpfError);
    expect((err as BpfError).errno, `errno: got ${(err as BpfError).errno}, want 524 (ENOTSUPP)`).toBe(524);
    expect(raw.supportsBatchLookup, "supportsBatchLookup after the kernel refused").toBe(false);
    expect(sorted(devmap.entries()), "entries() of a devmap").toEqual(sorted(want));
  });
});

const u32Codec = {
  size: 4,
  encode: (n: number) => u32(n),
  decode: (buf: Buffer, offset = 0) => buf.readUInt32LE(offset),
};

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}
