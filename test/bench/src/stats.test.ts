import { describe, expect, it } from "vitest";
import { median, percentile, ratio, summarize } from "./stats.js";

describe("stats", () => {
  it("median - odd and even counts, order does not matter", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
  });
  it("percentile - interpolates between closest ranks", () => {
    expect(percentile([10, 20, 30, 40, 50], 0)).toBe(10);
    expect(percentile([10, 20, 30, 40, 50], 100)).toBe(50);
    expect(percentile([10, 20, 30, 40], 25)).toBeCloseTo(17.5);
  });
  it("summarize - min/avg/max/p50", () => {
    expect(summarize([1, 2, 3, 10])).toEqual({ n: 4, min: 1, avg: 4, max: 10, p50: 2.5 });
    expect(summarize([]).n).toBe(0);
  });
  it("ratio - NaN instead of Infinity or garbage", () => {
    expect(ratio(1, 2)).toBe(0.5);
    expect(Number.isNaN(ratio(1, 0))).toBe(true);
    expect(Number.isNaN(ratio(Number.NaN, 1))).toBe(true);
  });
});
