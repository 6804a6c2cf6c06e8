/**
 * BPF maps by file descriptor: raw byte-level operations (update, lookup, delete, iterate, batch,
 * pin) and TypedMap, which applies the codecs of layout.ts. Per-CPU maps read and write one value
 * per possible CPU, each padded to 8 bytes, as the kernel does.
 */
import { BpfError, BpfSizeError } from "./errors.js";
import { lastErrno, libbpf } from "./libbpf.js";
import type { Codec } from "./layout.js";

/** Update flags (linux/bpf.h). */
export const UpdateFlag = { any: 0, noExist: 1, exist: 2 } as const;

const PERCPU_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */, 20 /* PERCPU_CGROUP_STORAGE */]);
const ENOENT = 2;

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

  /** `owned`: close the fd on close() (maps from bpf_obj_get); maps from an object belong to it. */
  constructor(fd: number, info: MapInfo, owned: boolean) {
    this.fd = fd;
    this.info = info;
    this.#owned = owned;
    this.perCpu = PERCPU_TYPES.has(info.type);
    this.valueBufferSize = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 * numPossibleCpus() : info.valueSize;
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
   * Every entry (next key, then lookup; entries deleted meanwhile are skipped). What a restarted
   * agent diffs against its desired state, then applies with setMany/deleteMany.
   */
  *entries(): Generator<[K, V]> {
    for (const key of this.raw.keys()) {
      const value = this.raw.lookup(key);
      if (value) yield [this.#k.decode(key), this.#v.decode(value)];
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

  /** Every entry with its per-CPU values (sum them with sumCounters). */
  *entries(): Generator<[K, V[]]> {
    for (const key of this.raw.keys()) {
      const buf = this.raw.lookup(key);
      if (!buf) continue;
      const out: V[] = [];
      for (let off = 0; off < buf.length; off += this.#stride) out.push(this.#v.decode(buf, off));
      yield [this.#k.decode(key), out];
    }
  }
}
