/** Flow records from cumulative counters: deltas per interval, resets, verdicts, and the report bound. */
import { describe, expect, it } from "vitest";
import type { FlowCounters } from "../datapath/datapath.js";
import { boundedForReport, flowRecords } from "./records.js";

const names = new Map([
  [300, "spiffe://weft.internal/ns/shop/sa/web"],
  [301, "spiffe://weft.internal/ns/shop/sa/api"],
]);
const c = (packets: number, bytes: number, drops: Record<string, number> = {}, dstId = 301): FlowCounters => ({
  srcId: 300,
  dstId,
  packets: BigInt(packets),
  bytes: BigInt(bytes),
  drops: Object.fromEntries(Object.entries(drops).map(([k, v]) => [k, BigInt(v)])),
});
const t = (s: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, s));

describe("flows/records", () => {
  it("records - the difference from the last read, named, with the verdict from the drops", () => {
    const first = flowRecords(new Map(), [c(10, 1000)], names, t(0), t(10));
    const second = flowRecords(first.next, [c(25, 2500, { defaultDeny: 5 }), c(3, 90, { policyDeny: 3 }, 999)], names, t(10), t(20));
    expect(second.records, "records of the second interval").toEqual([
      { source: names.get(300), destination: names.get(301), sourceId: 300, destinationId: 301, start: t(10).toISOString(), end: t(20).toISOString(), packets: 15, bytes: 1500, verdict: "mixed", drops: { defaultDeny: 5 } },
      { source: names.get(300), destination: "identity:999", sourceId: 300, destinationId: 999, start: t(10).toISOString(), end: t(20).toISOString(), packets: 3, bytes: 90, verdict: "dropped", drops: { policyDeny: 3 } },
    ]);
    const idle = flowRecords(second.next, [c(25, 2500, { defaultDeny: 5 })], names, t(20), t(30));
    expect(idle.records, "no change, no record").toEqual([]);
  });

  it("records - counters that went down (the entry was made again) count from zero", () => {
    const before = flowRecords(new Map(), [c(100, 10_000)], names, t(0), t(10)).next;
    const got = flowRecords(before, [c(4, 400)], names, t(10), t(20)).records;
    expect(got.map((r) => [r.packets, r.bytes, r.verdict]), "after a reset").toEqual([[4, 400, "forwarded"]]);
  });

  it("records - a report keeps the largest records by bytes and counts the rest", () => {
    const many = Array.from({ length: 600 }, (_, i) => flowRecords(new Map(), [c(1, i + 1, {}, 1000 + i)], names, t(0), t(1)).records[0]!);
    const { flows, omitted } = boundedForReport(many);
    expect(flows.length, "kept").toBe(512);
    expect(omitted, "omitted").toBe(88);
    expect(Math.min(...flows.map((f) => f.bytes)), "smallest kept").toBe(89);
  });
});
