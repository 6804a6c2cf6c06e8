import { describe, expect, it } from "vitest";
import { compare, roundOrder, summarizePath, type PathSample } from "./paths.js";
import { summarize } from "./stats.js";

const sample = (round: number, mbps: number, rtts: number[], lost = 0): PathSample => ({
  round,
  position: 0,
  startedAt: "2026-01-01T00:00:00.000Z",
  throughput: { receivedBitsPerSecond: mbps * 1e6, sentBitsPerSecond: mbps * 1e6, retransmits: 0, seconds: 5, intervalsBitsPerSecond: [] },
  latency: { samplesMs: rtts, transmitted: rtts.length + lost, received: rtts.length, summary: summarize(rtts) },
});

describe("paths", () => {
  it("roundOrder - over as many rounds as paths, every path takes every position once", () => {
    const orders = [0, 1, 2, 3].map((r) => roundOrder(["underlay", "weft", "hand"], r));
    expect(orders).toEqual([
      ["underlay", "weft", "hand"],
      ["weft", "hand", "underlay"],
      ["hand", "underlay", "weft"],
      ["underlay", "weft", "hand"],
    ]);
  });

  it("summarizePath - medians over rounds, losses summed", () => {
    const got = summarizePath([sample(0, 100, [1, 2, 3]), sample(1, 300, [2, 4, 6], 1), sample(2, 200, [1, 1, 1])]);
    expect(got.throughputMbps, "median throughput").toBe(200);
    expect(got.throughputMbpsPerRound, "per round").toEqual([100, 300, 200]);
    expect(got.latencyMs.p50, "median of per-round p50s (2, 4, 1)").toBe(2);
    expect(got.latencyMs.max, "median of per-round maxima (3, 6, 1)").toBe(3);
    expect([got.pingsSent, got.pingsLost], "sent, lost").toEqual([10, 1]);
  });

  it("compare - a/b ratios and the added latency", () => {
    const a = summarizePath([sample(0, 250, [0.6])]);
    const b = summarizePath([sample(0, 500, [0.2])]);
    const got = compare(a, b);
    expect(got.throughput).toBe(0.5);
    expect(got.latencyP50).toBeCloseTo(3);
    expect(got.addedLatencyP50Ms).toBeCloseTo(0.4);
  });
});
