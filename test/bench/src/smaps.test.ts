import { readFileSync, readlinkSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { formatSmaps, summarizeSmaps } from "./smaps.js";

const map = (range: string, perms: string, path: string, rss: number, pss: number, anon: number) =>
  `${range} ${perms} 00000000 fe:00 1234 ${path}\nSize: 4 kB\nRss: ${rss} kB\nPss: ${pss} kB\nAnonymous: ${anon} kB\nVmFlags: rd\n`;

const SAMPLE = [
  map("00400000-00b6f000", "r--p", "/usr/lib/weft/node", 5000, 500, 0),
  map("00b72000-025fe000", "r-xp", "/usr/lib/weft/node", 16000, 1600, 0),
  map("0563e000-0565d000", "rw-p", "/usr/lib/weft/node", 100, 100, 80),
  map("05c00000-06000000", "rw-p", "[heap]", 9000, 9000, 9000),
  map("7f0000000000-7f0000400000", "rw-p", "", 3000, 3000, 3000),
  map("7f0000400000-7f0004000000", "---p", "", 0, 0, 0),
  map("7f1000000000-7f1000001000", "---p", "", 0, 0, 0),
  map("7f1000001000-7f1000800000", "rw-p", "", 40, 40, 40),
  map("7f2000000000-7f2000100000", "r-xp", "/usr/lib/x86_64-linux-gnu/libbpf.so.1.1.0", 300, 100, 0),
  map("7f2000200000-7f2000300000", "r-xp", "/usr/lib/weft/node_modules/@koromix/koffi-linux-x64/koffi.node", 400, 400, 0),
  map("7f3000000000-7f3000040000", "rwxp", "", 2000, 2000, 2000),
  map("7f4000000000-7f4001000000", "rw-p", "", 12000, 12000, 12000),
  map("7ffd00000000-7ffd00021000", "rw-p", "[stack]", 100, 100, 100),
].join("");

describe("bench smaps", () => {
  it("smaps - sums each mapping once, by what it is", () => {
    const s = summarizeSmaps(SAMPLE, "/usr/lib/weft/node");
    const rss = (k: keyof typeof s.byKind) => s.byKind[k]?.rssKb;
    expect(rss("executable code"), "node's text").toBe(16000);
    expect(rss("executable data"), "node's read-only and writable data").toBe(5100);
    expect(rss("malloc main arena"), "[heap]").toBe(9000);
    expect(rss("malloc thread arenas"), "the 64 MB-aligned arena's used part").toBe(3000);
    expect(rss("thread stacks"), "the mapping after a guard page").toBe(40);
    expect(rss("shared libraries"), "libbpf").toBe(300);
    expect(rss("native addons"), "koffi").toBe(400);
    expect(rss("anonymous executable"), "V8's code").toBe(2000);
    expect(rss("anonymous other"), "V8's heap and the rest").toBe(12000);
    expect(rss("kernel"), "[stack]").toBe(100);
    expect(s.rssKb, "total Rss").toBe(47940);
    expect(s.pssKb, "total Pss").toBe(28840);
    expect(s.byLibrary, "Rss by library").toEqual({ "libbpf.so.1.1.0": 300, "koffi.node": 400 });
    expect(formatSmaps(s)[0], "largest first").toMatch(/^executable code\s+15\.6 MB RSS\s+1\.6 MB PSS$/);
  });

  it("smaps - this process: the kinds add up to smaps_rollup's Rss", () => {
    const s = summarizeSmaps(readFileSync("/proc/self/smaps", "utf8"), readlinkSync("/proc/self/exe"));
    const rollup = Number(/^Rss:\s+(\d+) kB/m.exec(readFileSync("/proc/self/smaps_rollup", "utf8"))?.[1]);
    expect(Math.abs(s.rssKb - rollup) / rollup, `got ${s.rssKb} kB, smaps_rollup ${rollup} kB`).toBeLessThan(0.05);
    expect(s.byKind["executable code"]?.rssKb ?? 0, "node's own code is resident").toBeGreaterThan(1024);
  });
});
