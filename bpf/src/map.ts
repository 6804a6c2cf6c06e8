/**
 * BPF maps by file descriptor: raw byte-level operations (create, update, lookup, delete, iterate
 * key by key or in batches, batch update/delete, pin) and TypedMap, which applies the codecs of
 * layout.ts. Per-CPU maps read and write one value per possible CPU, each padded to 8 bytes, as
 * the kernel does.
 */
import { BpfError, BpfSizeError } from "./errors.js";
import { lastErrno, libbpf } from "./libbpf.js";
import type { Codec } from "./layout.js";

/** Update flags (linux/bpf.h). */
export const UpdateFlag = { any: 0, noExist: 1, exist: 2 } as const;

const PERCPU_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */, 20 /* PERCPU_CGROUP_STORAGE */]);
const ENOENT = 2;
const ENOSPC = 28;
const EOPNOTSUPP = 95;
const ENOTSUPP = 524; // kernel-internal "operation not supported" (a map type without batch ops)

/** Map types (enum bpf_map_type, linux/bpf.h) that libbpf-ts names; any other number works too. */
export const MapType = { hash: 1, array: 2, percpuHash: 5, percpuArray: 6, lruHash: 9, lruPercpuHash: 10, lpmTrie: 11 } as const;

/** Map types (enum bpf_map_type) with BPF_MAP_LOOKUP_BATCH, by kernel version: 5.6 for hashes and arrays, 5.17 for LPM tries. */
const BATCH_LOOKUP_SINCE: ReadonlyMap<number, string> = new Map([
  [MapType.hash, "5.6"],
  [MapType.array, "5.6"],
  [MapType.percpuHash, "5.6"],
  [MapType.percpuArray, "5.6"],
  [MapType.lruHash, "5.6"],
  [MapType.lruPercpuHash, "5.6"],
  [MapType.lpmTrie, "5.17"],
]);

/** Map flag BPF_F_NO_PREALLOC, required for LPM tries. */
export const MapFlag = { noPrealloc: 1 } as const;

export interface MapCreateOptions {
  type: number;
  /** Up to 15 characters (the kernel cuts it). */
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** BPF_F_* flags (MapFlag.noPrealloc for an LPM trie). */
  flags?: number;
}

/** One chunk of a batch lookup: `count` keys and values packed back to back. */
export interface BatchChunk {
  count: number;
  /** count × keySize bytes. */
  keys: Buffer;
  /** count × valueBufferSize bytes (per-CPU: every CPU's value, each padded to 8 bytes). */
  values: Buffer;
}

export interface LookupBatchOptions {
  /** Entries asked for per syscall; default: as many as fit in ~1 MiB of values, 64 to 4096. */
  chunk?: number;
}

export interface MapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** BPF_F_* map flags (BPF_F_NO_PREALLOC = 1, …). */
  flags: number;
}

let possibleCpus: number | undefined;

/** Number of possible CPUs (the per-CPU value count), as libbpf computes it. */
export function numPossibleCpus(): number {
  if (possibleCpus === undefined) {
    const n = libbpf().libbpf_num_possible_cpus() as number;
    if (n < 0) throw new BpfError("libbpf_num_possible_cpus", -n);
    possibleCpus = n;
  }
  return possibleCpus;
}

export class BpfMap {
  readonly fd: number;
  readonly info: MapInfo;
  readonly perCpu: boolean;
  /** Bytes of one lookup/update value buffer (all CPUs for per-CPU maps). */
  readonly valueBufferSize: number;
  #owned: boolean;
  #closed = false;
  /** Whether this kernel has batch lookup for the map's type: known after the first attempt. */
  #batchLookup: boolean | undefined;

  /** `owned`: close the fd on close() (maps from bpf_obj_get); maps from an object belong to it. */
  constructor(fd: number, info: MapInfo, owned: boolean) {
    this.fd = fd;
    this.info = info;
    this.#owned = owned;
    this.perCpu = PERCPU_TYPES.has(info.type);
    this.valueBufferSize = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 * numPossibleCpus() : info.valueSize;
  }

  /** Creates a new map (bpf_map_create), owned by this object: close() releases it unless pinned. */
  static create(options: MapCreateOptions): BpfMap {
    // struct bpf_map_create_opts (libbpf 1.1): sz@0 btf_fd@8 … inner_map_fd@24 map_flags@28 map_extra@32 numa_node@40 map_ifindex@44 = 48 bytes
    const opts = Buffer.alloc(48);
    opts.writeBigUInt64LE(48n, 0);
    opts.writeUInt32LE(options.flags ?? 0, 28);
    const fd = libbpf().bpf_map_create(options.type, options.name, options.keySize, options.valueSize, options.maxEntries, opts) as number;
    if (fd < 0) throw new BpfError(`bpf_map_create ${options.name}`, -fd);
    try {
      return new BpfMap(fd, mapInfoByFd(fd), true);
    } catch (err) {
      libbpf().close(fd);
      throw err;
    }
  }

  /** Opens a map pinned on a bpffs path. */
  static fromPin(path: string): BpfMap {
    const fd = libbpf().bpf_obj_get(path) as number;
    if (fd < 0) throw new BpfError(`bpf_obj_get ${path}`, -fd);
    try {
      return new BpfMap(fd, mapInfoByFd(fd), true);
    } catch (err) {
      libbpf().close(fd);
      throw err;
    }
  }

  get name(): string {
    return this.info.name;
  }

  #key(op: string, key: Buffer): Buffer {
    if (key.length !== this.info.keySize) throw new BpfSizeError(`${op} ${this.name}`, "key", key.length, this.info.keySize);
    return key;
  }

  #value(op: string, value: Buffer): Buffer {
    if (value.length !== this.valueBufferSize) throw new BpfSizeError(`${op} ${this.name}`, "value", value.length, this.valueBufferSize);
    return value;
  }

  update(key: Buffer, value: Buffer, flags: number = UpdateFlag.any): void {
    const rc = libbpf().bpf_map_update_elem(this.fd, this.#key("update", key), this.#value("update", value), flags) as number;
    if (rc < 0) throw new BpfError(`bpf_map_update_elem ${this.name}`, -rc);
  }

  /** The value for `key`, or undefined when there is none. */
  lookup(key: Buffer): Buffer | undefined {
    const out = Buffer.allocUnsafe(this.valueBufferSize); // the kernel writes every byte
    const rc = libbpf().bpf_map_lookup_elem(this.fd, this.#key("lookup", key), out) as number;
    if (rc === -ENOENT) return undefined;
    if (rc < 0) throw new BpfError(`bpf_map_lookup_elem ${this.name}`, -rc);
    return out;
  }

  /** Deletes `key`; false when it was not there. */
  delete(key: Buffer): boolean {
    const rc = libbpf().bpf_map_delete_elem(this.fd, this.#key("delete", key)) as number;
    if (rc === -ENOENT) return false;
    if (rc < 0) throw new BpfError(`bpf_map_delete_elem ${this.name}`, -rc);
    return true;
  }

  /** Every key, by bpf_map_get_next_key. Keys deleted meanwhile may restart the walk (kernel rule). */
  *keys(): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.info.keySize);
      const rc = libbpf().bpf_map_get_next_key(this.fd, prev, next) as number;
      if (rc === -ENOENT) return;
      if (rc < 0) throw new BpfError(`bpf_map_get_next_key ${this.name}`, -rc);
      yield next;
      prev = next;
    }
  }

  /**
   * Whether entries() reads this map by batch lookup: true for hash, LRU hash and array maps,
   * their per-CPU forms and LPM tries, until the kernel refuses (ENOTSUPP: a kernel older than
   * 5.6, or 5.17 for LPM tries), then false; other types (devmap, sockmap, …) go key by key.
   */
  get supportsBatchLookup(): boolean {
    return this.#batchLookup ?? BATCH_LOOKUP_SINCE.has(this.info.type);
  }

  /**
   * Every entry in chunks, by BPF_MAP_LOOKUP_BATCH: one syscall per chunk instead of two per
   * entry. Ends when the kernel says ENOENT (with the last entries). Throws a BpfError (errno 524,
   * ENOTSUPP) when the kernel has no batch lookup for the map type: entries() then goes key by key.
   * Hash maps: entries added or deleted meanwhile may or may not be seen; none is seen twice
   * (LPM tries and arrays are walked by next key inside the kernel, with that rule).
   */
  *lookupBatchChunks(options: LookupBatchOptions = {}): Generator<BatchChunk> {
    const lib = libbpf();
    const keySize = this.info.keySize;
    const valueSize = this.valueBufferSize;
    let chunk = options.chunk ?? Math.max(64, Math.min(4096, Math.floor((1 << 20) / (valueSize + keySize))));
    // The batch cursor: a u32 bucket for hash maps, a key for the others.
    let inBatch: Buffer | null = null;
    let outBatch = Buffer.alloc(Math.max(keySize, 8));
    const count = Buffer.alloc(4);
    for (;;) {
      const keys = Buffer.allocUnsafe(chunk * keySize);
      const values = Buffer.allocUnsafe(chunk * valueSize);
      count.writeUInt32LE(chunk);
      const rc = lib.bpf_map_lookup_batch(this.fd, inBatch, outBatch, keys, values, count, batchOpts(0)) as number;
      const n = count.readUInt32LE();
      if (rc < 0 && rc !== -ENOENT) {
        // A hash bucket holding more entries than asked for, before anything was copied: ask for more.
        if (rc === -ENOSPC && n === 0 && chunk < 1 << 20) {
          chunk *= 2;
          continue;
        }
        const unsupported = -rc === ENOTSUPP || -rc === EOPNOTSUPP;
        if (unsupported) this.#batchLookup = false;
        const since = BATCH_LOOKUP_SINCE.get(this.info.type);
        const detail = unsupported
          ? `ENOTSUPP: this kernel has no batch lookup for map type ${this.info.type}${since ? ` (added in ${since})` : ""}: use lookupByKey()`
          : undefined;
        throw new BpfError(`bpf_map_lookup_batch ${this.name}`, -rc, { detail });
      }
      this.#batchLookup = true;
      if (n > 0) yield { count: n, keys: keys.subarray(0, n * keySize), values: values.subarray(0, n * valueSize) };
      if (rc === -ENOENT) return;
      inBatch = outBatch;
      outBatch = Buffer.alloc(Math.max(keySize, 8));
    }
  }

  /** Every entry as [key, value] by batch lookup (views into each chunk's buffers). See lookupBatchChunks. */
  *lookupBatch(options: LookupBatchOptions = {}): Generator<[Buffer, Buffer]> {
    const keySize = this.info.keySize;
    const valueSize = this.valueBufferSize;
    for (const c of this.lookupBatchChunks(options)) {
      for (let i = 0; i < c.count; i++) {
        yield [c.keys.subarray(i * keySize, (i + 1) * keySize), c.values.subarray(i * valueSize, (i + 1) * valueSize)];
      }
    }
  }

  /** Every entry key by key: get_next_key then lookup (entries deleted meanwhile are skipped). */
  *lookupByKey(): Generator<[Buffer, Buffer]> {
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value) yield [key, value];
    }
  }

  /**
   * Every entry in chunks: batch lookup when the kernel has it for the map type (see
   * supportsBatchLookup), else one chunk per entry from lookupByKey(). What TypedMap.entries()
   * and PerCpuMap.entries() decode.
   */
  *entryChunks(options: LookupBatchOptions = {}): Generator<BatchChunk> {
    if (this.supportsBatchLookup) {
      let yielded = false;
      try {
        for (const c of this.lookupBatchChunks(options)) {
          yielded = true;
          yield c;
        }
        return;
      } catch (err) {
        // A kernel without batch ops for this type fails the first call, before anything is yielded.
        if (yielded || !(err instanceof BpfError && (err.errno === ENOTSUPP || err.errno === EOPNOTSUPP))) throw err;
      }
    }
    for (const [keys, values] of this.lookupByKey()) yield { count: 1, keys, values };
  }

  /** Updates many entries in one syscall (kernel batch ops; hash and array maps). */
  updateBatch(keys: readonly Buffer[], values: readonly Buffer[], flags: number = UpdateFlag.any): void {
    if (keys.length !== values.length) throw new RangeError(`updateBatch ${this.name}: ${keys.length} keys but ${values.length} values`);
    if (keys.length === 0) return;
    const k = Buffer.concat(keys.map((key) => this.#key("updateBatch", key)));
    const v = Buffer.concat(values.map((value) => this.#value("updateBatch", value)));
    const count = Buffer.alloc(4);
    count.writeUInt32LE(keys.length);
    const rc = libbpf().bpf_map_update_batch(this.fd, k, v, count, batchOpts(flags)) as number;
    if (rc < 0) throw new BpfError(`bpf_map_update_batch ${this.name}`, -rc, { detail: `${count.readUInt32LE()} of ${keys.length} written` });
  }

  /** Deletes many keys in one syscall; every key must exist (ENOENT otherwise, after partial work). */
  deleteBatch(keys: readonly Buffer[]): void {
    if (keys.length === 0) return;
    const k = Buffer.concat(keys.map((key) => this.#key("deleteBatch", key)));
    const count = Buffer.alloc(4);
    count.writeUInt32LE(keys.length);
    const rc = libbpf().bpf_map_delete_batch(this.fd, k, count, batchOpts(0)) as number;
    if (rc < 0) throw new BpfError(`bpf_map_delete_batch ${this.name}`, -rc, { detail: `${count.readUInt32LE()} of ${keys.length} deleted` });
  }

  /** Pins the map at `path` on a bpffs; it then outlives this process. */
  pin(path: string): void {
    const rc = libbpf().bpf_obj_pin(this.fd, path) as number;
    if (rc < 0) throw new BpfError(`bpf_obj_pin ${this.name} ${path}`, -rc);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) libbpf().close(this.fd);
  }
}

function batchOpts(elemFlags: number): Buffer {
  // struct bpf_map_batch_opts { size_t sz; __u64 elem_flags; __u64 flags; }
  const opts = Buffer.alloc(24);
  opts.writeBigUInt64LE(24n, 0);
  opts.writeBigUInt64LE(BigInt(elemFlags), 8);
  return opts;
}

/** Name, type and sizes of a map fd (struct bpf_map_info). */
export function mapInfoByFd(fd: number): MapInfo {
  // struct bpf_map_info: type@0 id@4 key_size@8 value_size@12 max_entries@16 map_flags@20 name[16]@24 …
  const info = Buffer.alloc(256);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(info.length);
  const rc = libbpf().bpf_obj_get_info_by_fd(fd, info, len) as number;
  if (rc < 0) throw new BpfError("bpf_obj_get_info_by_fd", -rc || lastErrno());
  const name = info.subarray(24, 40);
  const end = name.indexOf(0);
  return {
    type: info.readUInt32LE(0),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    flags: info.readUInt32LE(20),
    name: name.subarray(0, end < 0 ? 16 : end).toString("utf8"),
  };
}

/** A map seen through its key and value codecs. Per-CPU maps: see PerCpuMap. */
export class TypedMap<K, V> {
  readonly raw: BpfMap;
  readonly #k: Codec<K>;
  readonly #v: Codec<V>;

  constructor(raw: BpfMap, key: Codec<K>, value: Codec<V>) {
    if (raw.perCpu) throw new TypeError(`map ${raw.name} is per-CPU; use PerCpuMap`);
    if (key.size !== raw.info.keySize) throw new BpfSizeError(`TypedMap ${raw.name}`, "key", key.size, raw.info.keySize);
    if (value.size !== raw.info.valueSize) throw new BpfSizeError(`TypedMap ${raw.name}`, "value", value.size, raw.info.valueSize);
    this.raw = raw;
    this.#k = key;
    this.#v = value;
  }

  set(key: K, value: V, flags: number = UpdateFlag.any): void {
    this.raw.update(this.#k.encode(key), this.#v.encode(value), flags);
  }

  get(key: K): V | undefined {
    const buf = this.raw.lookup(this.#k.encode(key));
    return buf && this.#v.decode(buf);
  }

  delete(key: K): boolean {
    return this.raw.delete(this.#k.encode(key));
  }

  setMany(entries: readonly (readonly [K, V])[], flags: number = UpdateFlag.any): void {
    this.raw.updateBatch(
      entries.map(([k]) => this.#k.encode(k)),
      entries.map(([, v]) => this.#v.encode(v)),
      flags,
    );
  }

  deleteMany(keys: readonly K[]): void {
    this.raw.deleteBatch(keys.map((k) => this.#k.encode(k)));
  }

  /** Every key (bpf_map_get_next_key). */
  *keys(): Generator<K> {
    for (const key of this.raw.keys()) yield this.#k.decode(key);
  }

  /**
   * Every entry: by batch lookup when the kernel has it for the map type (hash, LRU hash, array,
   * LPM trie since 5.17), else next key then lookup (entries deleted meanwhile are skipped). What a
   * restarted agent diffs against its desired state, then applies with setMany/deleteMany.
   */
  *entries(options: LookupBatchOptions = {}): Generator<[K, V]> {
    yield* this.#decodeChunks(this.raw.entryChunks(options));
  }

  /** Every entry by batch lookup only (BpfError on a map type without batch ops). */
  *entriesBatch(options: LookupBatchOptions = {}): Generator<[K, V]> {
    yield* this.#decodeChunks(this.raw.lookupBatchChunks(options));
  }

  /** Every entry key by key (bpf_map_get_next_key + lookup), whatever the map type. */
  *entriesByKey(): Generator<[K, V]> {
    for (const [key, value] of this.raw.lookupByKey()) yield [this.#k.decode(key), this.#v.decode(value)];
  }

  *#decodeChunks(chunks: Iterable<BatchChunk>): Generator<[K, V]> {
    const ks = this.raw.info.keySize;
    const vs = this.raw.valueBufferSize;
    for (const c of chunks) {
      for (let i = 0; i < c.count; i++) yield [this.#k.decode(c.keys, i * ks), this.#v.decode(c.values, i * vs)];
    }
  }
}

/** A per-CPU map: values are arrays with one entry per possible CPU. */
export class PerCpuMap<K, V> {
  readonly raw: BpfMap;
  readonly #k: Codec<K>;
  readonly #v: Codec<V>;
  readonly #stride: number;

  constructor(raw: BpfMap, key: Codec<K>, value: Codec<V>) {
    if (!raw.perCpu) throw new TypeError(`map ${raw.name} is not per-CPU; use TypedMap`);
    if (key.size !== raw.info.keySize) throw new BpfSizeError(`PerCpuMap ${raw.name}`, "key", key.size, raw.info.keySize);
    if (value.size !== raw.info.valueSize) throw new BpfSizeError(`PerCpuMap ${raw.name}`, "value", value.size, raw.info.valueSize);
    this.raw = raw;
    this.#k = key;
    this.#v = value;
    this.#stride = Math.ceil(value.size / 8) * 8;
  }

  get(key: K): V[] | undefined {
    const buf = this.raw.lookup(this.#k.encode(key));
    if (!buf) return undefined;
    const out: V[] = [];
    for (let off = 0; off < buf.length; off += this.#stride) out.push(this.#v.decode(buf, off));
    return out;
  }

  /** Writes `value` on every CPU (typically to reset counters). */
  setAll(key: K, value: V): void {
    const one = this.#v.encode(value);
    const buf = Buffer.alloc(this.raw.valueBufferSize);
    for (let off = 0; off < buf.length; off += this.#stride) one.copy(buf, off);
    this.raw.update(this.#k.encode(key), buf);
  }

  delete(key: K): boolean {
    return this.raw.delete(this.#k.encode(key));
  }

  *keys(): Generator<K> {
    for (const key of this.raw.keys()) yield this.#k.decode(key);
  }

  /**
   * Every entry with its per-CPU values: by batch lookup when the map type has it (per-CPU hash,
   * LRU per-CPU hash, per-CPU array), else key by key.
   */
  *entries(options: LookupBatchOptions = {}): Generator<[K, V[]]> {
    yield* this.#decodeChunks(this.raw.entryChunks(options));
  }

  /** Every entry by batch lookup only (BpfError on a map type without batch ops). */
  *entriesBatch(options: LookupBatchOptions = {}): Generator<[K, V[]]> {
    yield* this.#decodeChunks(this.raw.lookupBatchChunks(options));
  }

  /** Every entry key by key (bpf_map_get_next_key + lookup), whatever the map type. */
  *entriesByKey(): Generator<[K, V[]]> {
    for (const [keys, values] of this.raw.lookupByKey()) yield* this.#decodeChunks([{ count: 1, keys, values }]);
  }

  *#decodeChunks(chunks: Iterable<BatchChunk>): Generator<[K, V[]]> {
    const ks = this.raw.info.keySize;
    const vs = this.raw.valueBufferSize;
    for (const c of chunks) {
      for (let i = 0; i < c.count; i++) {
        const out: V[] = [];
        for (let off = i * vs; off < (i + 1) * vs; off += this.#stride) out.push(this.#v.decode(c.values, off));
        yield [this.#k.decode(c.keys, i * ks), out];
      }
    }
  }
}
