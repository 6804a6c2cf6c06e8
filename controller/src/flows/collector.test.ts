/** The flow collector: aggregation per identity pair across nodes and intervals, and refusals of hostile reports. */
import { FLOW_REPORT_BURST, FLOW_REPORT_MAX_BYTES, type FlowRecord } from "@weft/protocol";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { FlowCollector } from "./collector.js";

const A = "n-000000000000000a";
const B = "n-000000000000000b";
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const rec = (o: Partial<FlowRecord> = {}): FlowRecord => ({
  source: "spiffe://weft.internal/ns/shop/sa/web",
  destination: "spiffe://weft.internal/ns/shop/sa/api",
  sourceId: 300,
  destinationId: 301,
  start: "2030-01-01T00:00:00.000Z",
  end: "2030-01-01T00:00:10.000Z",
  packets: 10,
  bytes: 1000,
  verdict: "forwarded",
  drops: {},
  ...o,
});
const report = (nodeId: string, flows: FlowRecord[]) => ({ version: 1, nodeId, sentAt: "2030-01-01T00:00:10.000Z", flows, omitted: 0 });

describe("flows/collector", () => {
  it("collector - adds up a pair across nodes in one interval, replaces the last interval and keeps totals", () => {
    let now = 0;
    const c = new FlowCollector({ log: pino({ level: "silent" }), now: () => now });
    expect(c.accept(`weft.v1.node.${A}.flows`, enc(report(A, [rec()]))), "A").toBe(true);
    expect(c.accept(`weft.v1.node.${B}.flows`, enc(report(B, [rec({ packets: 5, bytes: 500, drops: { defaultDeny: 5 }, verdict: "dropped" })]))), "B").toBe(true);
    let p = c.view().pairs[0]!;
    expect({ last: p.last, total: p.total, nodes: p.nodes }, "after one interval").toEqual({
      last: { start: "2030-01-01T00:00:00.000Z", end: "2030-01-01T00:00:10.000Z", packets: 15, bytes: 1500, drops: { defaultDeny: 5 } },
      total: { packets: 15, bytes: 1500, drops: { defaultDeny: 5 } },
      nodes: [A, B],
    });
    now += 10_000;
    c.accept(`weft.v1.node.${A}.flows`, enc(report(A, [rec({ start: "2030-01-01T00:00:10.000Z", end: "2030-01-01T00:00:20.000Z", packets: 1, bytes: 100 })])));
    p = c.view().pairs[0]!;
    expect(p.last.packets, "last interval replaced").toBe(1);
    expect(p.total.packets, "total").toBe(16);
    expect(c.view().reports, "reports").toEqual({ accepted: 3, refused: 0 });
  });

  it("collector - refuses another node's report, malformed JSON, unknown fields, oversize and too-frequent reports, and stores nothing from them", () => {
    let now = 0;
    const refused: string[] = [];
    const c = new FlowCollector({ log: pino({ level: "silent" }), now: () => now, onReport: (r) => refused.push(r) });
    const subject = `weft.v1.node.${A}.flows`;
    expect(c.accept(subject, enc(report(B, [rec()]))), "names another node").toBe(false);
    expect(c.accept(subject, new TextEncoder().encode("{nope")), "not JSON").toBe(false);
    expect(c.accept(subject, enc({ ...report(A, [rec()]), extra: 1 })), "unknown field").toBe(false);
    expect(c.accept(subject, enc(report(A, [rec({ packets: -1 })]))), "negative count").toBe(false);
    expect(c.accept(subject, new Uint8Array(FLOW_REPORT_MAX_BYTES + 1)), "too large").toBe(false);
    expect(c.accept("weft.v1.node.x.flows", enc(report(A, [rec()]))), "bad subject").toBe(false);
    expect(c.view().pairs, "nothing stored").toEqual([]);
    expect(c.accept(subject, enc(report(A, [rec()]))), "a good one").toBe(true);
    for (let i = 1; i < FLOW_REPORT_BURST; i++) {
      now += 500;
      expect(c.accept(subject, enc(report(A, [rec()]))), `report ${i + 1}, 0.5 s after the last (within the burst)`).toBe(true);
    }
    now += 500;
    expect(c.accept(subject, enc(report(A, [rec()]))), "past the burst, 0.5 s later").toBe(false);
    for (let i = 0; i < 20; i++) {
      now += 500;
      expect(c.accept(subject, enc(report(A, [rec()]))), `a report every 0.5 s: ${i}`).toBe(i % 4 === 0);
    }
    expect(c.view().reports, "counts").toEqual({ accepted: FLOW_REPORT_BURST + 5, refused: 6 + 1 + 15 });
  });

  it("collector - accepts every report of an agent reporting every 2 s whose reports arrive late, early or in pairs", () => {
    let now = 0;
    const c = new FlowCollector({ log: pino({ level: "silent" }), now: () => now });
    const subject = `weft.v1.node.${A}.flows`;
    // Arrival times: on time, one late by 1.5 s then the next on time, two flushed together after a stall.
    const gaps = [0, 2_000, 2_000, 3_500, 500, 2_000, 2_000, 5_900, 100, 2_000, 1_900, 2_100, 1_950, 2_050];
    const accepted = gaps.map((gap) => {
      now += gap;
      return c.accept(subject, enc(report(A, [rec()])));
    });
    expect(accepted, "every report accepted").toEqual(gaps.map(() => true));
    expect(c.view().pairs[0]!.total.packets, "every report counted").toBe(10 * gaps.length);
  });

  it("collector - keeps at most maxPairs pairs, dropping the least recently seen", () => {
    let now = 0;
    const c = new FlowCollector({ log: pino({ level: "silent" }), now: () => (now += 3000), maxPairs: 2 });
    for (const dst of [1, 2, 3]) c.accept(`weft.v1.node.${A}.flows`, enc(report(A, [rec({ destinationId: 400 + dst })])));
    expect(c.view().pairs.map((p) => p.destinationId).sort(), "pairs kept").toEqual([402, 403]);
  });
});
