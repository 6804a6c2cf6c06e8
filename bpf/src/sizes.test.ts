import { describe, expect, it } from "vitest";
import { MapName } from "./layout.js";
import { LbMapName } from "./lb-layout.js";
import { DEFAULT_FLOW_TABLE_ENTRIES, MAX_FLOW_TABLE_ENTRIES, MIN_FLOW_TABLE_ENTRIES } from "./flow-table-limits.js";
import { flowTableSizes } from "./sizes.js";

describe("bpf - flow table sizes", () => {
  it("bpf - one entry per flow in the per-flow tables, a quarter (at least 1,024) in those per identity pair or source", () => {
    const sizes = flowTableSizes(DEFAULT_FLOW_TABLE_ENTRIES);
    for (const name of [MapName.conntrack, LbMapName.socks, LbMapName.nat, LbMapName.rnat]) expect(sizes[name], name).toBe(65_536);
    for (const name of [MapName.counters, LbMapName.ratelimit, LbMapName.drops]) expect(sizes[name], name).toBe(16_384);
    expect(flowTableSizes(MIN_FLOW_TABLE_ENTRIES)[MapName.counters], "the floor of a quarter").toBe(1_024);
    expect(Object.keys(sizes), "tables not sized by traffic are left alone").not.toContain(LbMapName.rr);
  });
  it("bpf - a size out of range or not an integer is refused, naming the range", () => {
    for (const bad of [MIN_FLOW_TABLE_ENTRIES - 1, MAX_FLOW_TABLE_ENTRIES + 1, 10_000.5, Number.NaN]) {
      expect(() => flowTableSizes(bad), String(bad)).toThrow(/from 4096 to 1048576/);
    }
  });
});
