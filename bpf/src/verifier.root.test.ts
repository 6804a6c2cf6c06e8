/**
 * Root: what the kernel's verifier processes to load each program, a count that is the same on
 * every load on one kernel (not a timing). Loading is CPU every agent spends at start (the tc
 * programs) and at its first service (the socket programs): the verifier checks a bounded loop's
 * body once per iteration, and the least-connections scan over 64 backends was 94 % of the
 * ~70,000 instructions weft_from_workload took (~60,000 for connect4; 75–100 ms of CPU). The
 * budget keeps such a loop from coming back: a scan over backends belongs in a bpf_loop callback.
 * Each program is loaded alone by bpftool (its maps created with it) on a scratch bpffs.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATAPATH_PROGRAMS, objectPath } from "./datapath.js";
import { mountScratchBpffs, type ScratchBpffs } from "./scratch-bpffs.js";
import { SOCK_PROGRAMS } from "./sock.js";

const isRoot = process.getuid?.() === 0;
/** Instructions processed, per program: the largest today is ~4,600 (weft_from_workload). */
const BUDGET = 15_000;

describe.skipIf(!isRoot)("bpf - verifier cost of each program", () => {
  let fs: ScratchBpffs;
  beforeAll(() => {
    fs = mountScratchBpffs("weft-verifier-");
    mkdirSync(fs.pinDir, { recursive: true });
  });
  afterAll(() => fs?.remove());

  /** `bpftool -d` prints the verifier's log on stderr, with a "processed N insns" line per program. */
  const processed = (program: string): number => {
    const run = spawnSync("bpftool", ["-d", "prog", "loadall", objectPath(program), join(fs.pinDir, program)], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
    if (run.status !== 0) throw new Error(`bpftool could not load ${program}: ${run.stderr.slice(-2000)}`);
    const counts = [...run.stderr.matchAll(/^processed (\d+) insns/gm)].map((m) => Number(m[1]));
    if (counts.length === 0) throw new Error(`no verifier summary in bpftool's log for ${program}`);
    return Math.max(...counts);
  };

  it("bpf - no program makes the verifier process more than 15,000 instructions", () => {
    const figures = [...DATAPATH_PROGRAMS, ...SOCK_PROGRAMS.map((p) => p.name)].map((p) => [p, processed(p)] as const);
    console.log(`verifier: ${figures.map(([p, n]) => `${p} ${n}`).join(", ")}`);
    for (const [p, n] of figures) expect(n, `${p}: instructions the verifier processed`).toBeLessThanOrEqual(BUDGET);
  });
});
