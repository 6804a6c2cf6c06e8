import { describe, expect, it } from "vitest";
import { mergeIntervals, portRangePrefixCount, portRangePrefixes, resolvePortIntervals } from "./ports.js";

/** Every port the prefixes cover, for checking exactness. */
const covered = (ps: { port: number; bits: number }[]) => ps.flatMap((p) => Array.from({ length: 2 ** (16 - p.bits) }, (_, i) => p.port + i));

describe("ports", () => {
  it("ports - a range becomes the fewest aligned prefixes covering exactly it", () => {
    expect(portRangePrefixes(0, 65535), "every port").toEqual([{ port: 0, bits: 0 }]);
    expect(portRangePrefixes(443, 443), "one port").toEqual([{ port: 443, bits: 16 }]);
    expect(portRangePrefixes(1024, 2047), "an aligned block").toEqual([{ port: 1024, bits: 6 }]);
    for (const [from, to] of [[1, 65534], [1000, 1999], [3, 1020], [65535, 65535], [0, 1], [8000, 8191]] as const) {
      const ps = portRangePrefixes(from, to);
      const ports = covered(ps);
      expect([ports.length, Math.min(...ports), Math.max(...ports), new Set(ports).size], `${from}-${to}: count, first, last, distinct`).toEqual([to - from + 1, from, to, to - from + 1]);
      expect(ps.length, `${from}-${to}: at most 2·16 prefixes`).toBeLessThanOrEqual(30);
      expect(portRangePrefixCount(from, to), `${from}-${to}: count`).toBe(ps.length);
    }
    expect(() => portRangePrefixes(5, 4), "reversed").toThrow(/not a port range/);
    expect(() => portRangePrefixes(0, 65536), "past 65535").toThrow(/not a port range/);
  });

  it("ports - intervals merge when they overlap or touch", () => {
    expect(mergeIntervals([{ from: 10, to: 20 }, { from: 1, to: 5 }, { from: 21, to: 30 }, { from: 15, to: 18 }, { from: 40, to: 40 }])).toEqual([
      { from: 1, to: 5 },
      { from: 10, to: 30 },
      { from: 40, to: 40 },
    ]);
  });

  it("ports - allows and denies resolve into disjoint intervals, deny winning wherever it covers", () => {
    expect(resolvePortIntervals([{ from: 0, to: 65535 }], [{ from: 22, to: 22 }, { from: 100, to: 200 }])).toEqual([
      { from: 0, to: 21, verdict: "allow" },
      { from: 22, to: 22, verdict: "deny" },
      { from: 23, to: 99, verdict: "allow" },
      { from: 100, to: 200, verdict: "deny" },
      { from: 201, to: 65535, verdict: "allow" },
    ]);
    expect(resolvePortIntervals([{ from: 80, to: 80 }], [{ from: 0, to: 65535 }]), "a deny of every port swallows the allow").toEqual([{ from: 0, to: 65535, verdict: "deny" }]);
    expect(resolvePortIntervals([{ from: 1, to: 10 }, { from: 5, to: 20 }], []), "allows merged").toEqual([{ from: 1, to: 20, verdict: "allow" }]);
    expect(resolvePortIntervals([], [{ from: 7, to: 7 }]), "a deny alone").toEqual([{ from: 7, to: 7, verdict: "deny" }]);
    expect(resolvePortIntervals([{ from: 10, to: 20 }], [{ from: 10, to: 20 }]), "the same range denied").toEqual([{ from: 10, to: 20, verdict: "deny" }]);
  });
});
