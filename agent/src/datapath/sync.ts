/**
 * Converging one BPF map on a desired set of entries: read what the map holds (it may be pinned
 * and filled by an earlier agent), then delete what is gone and write what is new or changed, each
 * as one batch. Never a full rewrite: a change to one policy costs map operations for that change.
 */

/** The part of a typed map the sync needs (TypedMap from @weft/bpf has it). */
export interface SyncableMap<K, V> {
  entries(): Iterable<[K, V]>;
  setMany(entries: readonly (readonly [K, V])[]): void;
  deleteMany(keys: readonly K[]): void;
}

export interface SyncResult {
  set: number;
  deleted: number;
  unchanged: number;
}

/**
 * Makes `map` hold exactly `desired` (keyed by `keyOf`). Deletes go first so a map that is full of
 * stale entries still has room for the new ones.
 */
export function syncMap<K, V>(map: SyncableMap<K, V>, desired: ReadonlyMap<string, readonly [K, V]>, keyOf: (k: K) => string, sameValue: (a: V, b: V) => boolean): SyncResult {
  const actual = new Map<string, [K, V]>();
  for (const [k, v] of map.entries()) actual.set(keyOf(k), [k, v]);
  const remove: K[] = [];
  for (const [key, [k]] of actual) if (!desired.has(key)) remove.push(k);
  const write: (readonly [K, V])[] = [];
  let unchanged = 0;
  for (const [key, entry] of desired) {
    const have = actual.get(key);
    if (have && sameValue(have[1], entry[1])) unchanged++;
    else write.push(entry);
  }
  if (remove.length > 0) map.deleteMany(remove);
  if (write.length > 0) map.setMany(write);
  return { set: write.length, deleted: remove.length, unchanged };
}

/** Shallow equality of two plain value objects (the codecs' decoded values). */
export function sameFields<V extends object>(a: V, b: V): boolean {
  const ka = Object.keys(a) as (keyof V)[];
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
