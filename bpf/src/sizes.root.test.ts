/**
 * Root: the tables that grow with traffic are created with the entries asked for
 * (flowTableSizes), in the tc and the socket objects alike; a table already pinned keeps its size
 * and its entries when the datapath is opened again asking for another (an agent restart or an
 * upgrade must not drop tracked flows), including a pin of the objects' own declared size (an
 * earlier build); and the kernel memory the tables hold follows the size.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TcDatapath } from "./datapath.js";
import { MapName } from "./layout.js";
import { LbMapName } from "./lb-layout.js";
import { BpfMap } from "./map.js";
import { mountScratchBpffs, type ScratchBpffs } from "./scratch-bpffs.js";
import { DEFAULT_FLOW_TABLE_ENTRIES } from "./flow-table-limits.js";
import { flowTableSizes } from "./sizes.js";
import { SockDatapath } from "./sock.js";

const isRoot = process.getuid?.() === 0;

const pinnedInfo = (pinDir: string, name: string) => {
  const m = BpfMap.fromPin(join(pinDir, "maps", name));
  try {
    return m.info;
  } finally {
    m.close();
  }
};
/** Kernel memory (bytes) bpftool reports for the map pinned as `name`. */
const memlock = (pinDir: string, name: string): number =>
  Number((JSON.parse(execFileSync("bpftool", ["map", "show", "pinned", join(pinDir, "maps", name), "-j"], { encoding: "utf8" })) as { bytes_memlock: number | string }).bytes_memlock);

describe.skipIf(!isRoot)("bpf - table sizes", () => {
  let fs: ScratchBpffs;
  beforeEach(() => {
    fs = mountScratchBpffs("wbt-sizes-");
  });
  afterEach(() => fs.remove());

  it("bpf - the tc and socket objects create their traffic tables with the sizes asked for, and the memory follows", () => {
    const sizes = flowTableSizes(8192);
    const tc = TcDatapath.open({ pinDir: fs.pinDir, maxEntries: sizes });
    const sock = SockDatapath.open({ pinDir: fs.pinDir, maxEntries: sizes });
    try {
      for (const [name, entries] of Object.entries(sizes)) {
        expect(pinnedInfo(fs.pinDir, name).maxEntries, `${name} entries`).toBe(entries);
        expect(tc.pinOutcome[name] ?? sock.pinOutcome[name], `${name} created`).toBe("created");
      }
      expect(pinnedInfo(fs.pinDir, LbMapName.rr).maxEntries, "a table not sized by traffic keeps its declared size").toBe(16384);
      const small = Object.keys(sizes).reduce((sum, name) => sum + memlock(fs.pinDir, name), 0);
      console.log(`bpf - traffic tables for 8,192 flows: ${(small / 2 ** 20).toFixed(1)} MiB of kernel memory (${Math.round(small / 8192)} B per flow)`);
      expect(small / 8192, "bytes of kernel memory per flow").toBeLessThan(600);
    } finally {
      sock.close();
      tc.close();
    }
  });

  it("bpf - a pinned table keeps its size and its entries when the datapath is opened asking for another, an earlier build's too", () => {
    // An earlier build's pins: the objects' declared sizes (no sizes asked for).
    const first = TcDatapath.open({ pinDir: fs.pinDir });
    const declared = pinnedInfo(fs.pinDir, MapName.conntrack).maxEntries;
    first.map(MapName.conntrack).update(Buffer.alloc(16, 7), Buffer.alloc(8, 1));
    first.close();
    expect(declared, "the objects' declared conntrack size").toBeGreaterThan(DEFAULT_FLOW_TABLE_ENTRIES);

    const again = TcDatapath.open({ pinDir: fs.pinDir, maxEntries: flowTableSizes(DEFAULT_FLOW_TABLE_ENTRIES) });
    try {
      expect(again.pinOutcome[MapName.conntrack], "reused").toBe("reused");
      expect(pinnedInfo(fs.pinDir, MapName.conntrack).maxEntries, "kept its size").toBe(declared);
      expect(again.map(MapName.conntrack).lookup(Buffer.alloc(16, 7)), "kept its entry").toEqual(Buffer.alloc(8, 1));
    } finally {
      again.close();
    }

    // Once the pins are gone (a reboot, weft down) the size asked for applies.
    fs.remove();
    fs = mountScratchBpffs("wbt-sizes-");
    const fresh = TcDatapath.open({ pinDir: fs.pinDir, maxEntries: flowTableSizes(DEFAULT_FLOW_TABLE_ENTRIES) });
    try {
      expect(pinnedInfo(fs.pinDir, MapName.conntrack).maxEntries, "created with the size asked for").toBe(DEFAULT_FLOW_TABLE_ENTRIES);
    } finally {
      fresh.close();
    }
  });
});
