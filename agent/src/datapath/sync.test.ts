import { describe, expect, it } from "vitest";
import { sameFields, syncMap, type SyncableMap } from "./sync.js";

/** An in-memory map that records the batches it receives. */
class MemoryMap implements SyncableMap<{ id: number }, { v: string }> {
  readonly data = new Map<number, { v: string }>();
  readonly calls: string[] = [];
  *entries(): Iterable<[{ id: number }, { v: string }]> {
    for (const [id, v] of this.data) yield [{ id }, v];
  }
  setMany(entries: readonly (readonly [{ id: number }, { v: string }])[]): void {
    this.calls.push(`set ${entries.length}`);
    for (const [k, v] of entries) this.data.set(k.id, v);
  }
  deleteMany(keys: readonly { id: number }[]): void {
    this.calls.push(`delete ${keys.length}`);
    for (const k of keys) this.data.delete(k.id);
  }
}

const desired = (pairs: [number, string][]) => new Map(pairs.map(([id, v]) => [String(id), [{ id }, { v }] as const]));

describe("syncMap", () => {
  it("writes only what changed and deletes what is gone, one batch each", () => {
    const map = new MemoryMap();
    map.data.set(1, { v: "a" }).set(2, { v: "b" }).set(3, { v: "c" });
    const r = syncMap(map, desired([[1, "a"], [2, "B"], [4, "d"]]), (k) => String(k.id), sameFields);
    expect(r).toEqual({ set: 2, deleted: 1, unchanged: 1 });
    expect(map.calls).toEqual(["delete 1", "set 2"]);
    expect([...map.data.entries()].sort()).toEqual([[1, { v: "a" }], [2, { v: "B" }], [4, { v: "d" }]]);
  });

  it("touches nothing when the map already holds the desired entries", () => {
    const map = new MemoryMap();
    map.data.set(7, { v: "x" });
    expect(syncMap(map, desired([[7, "x"]]), (k) => String(k.id), sameFields)).toEqual({ set: 0, deleted: 0, unchanged: 1 });
    expect(map.calls).toEqual([]);
  });
});
