/**
 * Root: the policy LPM trie under BPF_PROG_RUN — port ranges as prefixes (a rule of 64 ranges is a
 * few hundred entries and every port of it decides right), deny winning over allow across the
 * any-protocol lookup, and the migration from the old per-port hash map: an agent that finds the
 * old `weft_policy` pin opens the new map beside it and unpins the old one once asked to.
 * Needs CAP_BPF/CAP_NET_ADMIN. The prefix expansion here is the test's own (an independent oracle
 * for the agent's, @weft/protocol portRangePrefixes).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TcDatapath } from "./datapath.js";
import { DropReason, MapName, RETIRED_MAPS, TcAction, anyPortKey, exactPortKey, type PolicyKey, type PolicyValue, zeroCounters } from "./layout.js";
import { BpfMap, MapType } from "./map.js";
import { ipv4Packet, type PacketSpec } from "./packet.js";
import { mountScratchBpffs, type ScratchBpffs } from "./scratch-bpffs.js";
import { testRun } from "./testrun.js";

const isRoot = process.getuid?.() === 0;
const TCP = 6;
const UDP = 17;
const WEB = 300; // 10.3.0.0/24
const API = 400; // 10.3.1.0/24, default deny
const pkt = (proto: "tcp" | "udp", dport: number): PacketSpec => ({ src: "10.3.0.5", dst: "10.3.1.7", proto, sport: 40000, dport });

/** The aligned blocks covering from..to exactly (the classic range-to-prefix split). */
function blocks(from: number, to: number): { port: number; bits: number }[] {
  const out: { port: number; bits: number }[] = [];
  for (let at = from; at <= to; ) {
    let bits = 16;
    while (bits > 0) {
      const size = 2 ** (16 - (bits - 1));
      if (at % size !== 0 || at + size - 1 > to) break;
      bits--;
    }
    out.push({ port: at, bits });
    at += 2 ** (16 - bits);
  }
  return out;
}

/** 64 ranges of 1018 ports each, 1024 apart (the rule: one entry per port made 65,152). */
const RANGES = Array.from({ length: 64 }, (_, i) => ({ from: 1024 * i + 3, to: 1024 * i + 1020 }));

describe.skipIf(!isRoot)("bpf - policy LPM trie", () => {
  let dp: TcDatapath;
  const verdictOf = (proto: "tcp" | "udp", dport: number) => testRun(dp.progOverlayIn, ipv4Packet(pkt(proto, dport))).retval;

  beforeAll(() => {
    dp = TcDatapath.load();
    dp.ipcache.setMany([
      [{ addr: "10.3.0.0", prefixlen: 24 }, { identity: WEB }],
      [{ addr: "10.3.1.0", prefixlen: 24 }, { identity: API }],
    ]);
    dp.policyDefault.set(API, { defaultDeny: true });
  });
  afterAll(() => dp?.close());

  it("bpf - a rule of 64 port ranges is about a thousand prefixes, not 65,152, and every port in and around them gets the right verdict", () => {
    const entries: [PolicyKey, PolicyValue][] = RANGES.flatMap((r) => blocks(r.from, r.to).map((b): [PolicyKey, PolicyValue] => [{ srcId: WEB, dstId: API, proto: TCP, port: b.port, portBits: b.bits }, { verdict: "allow" }]));
    dp.policy.setMany(entries);
    try {
      console.log(`bpf - 64 ranges of 1018 ports: ${entries.length} LPM entries (one per port would be ${64 * 1018})`);
      expect(entries.length, "entries for 64 ranges").toBeLessThan(64 * 32);
      const wrong: string[] = [];
      for (const r of RANGES.slice(0, 8)) {
        for (const port of [r.from - 3, r.from - 1, r.from, r.from + 1, r.from + 500, r.to - 1, r.to, r.to + 1, r.to + 3]) {
          const inRange = RANGES.some((x) => port >= x.from && port <= x.to);
          const got = verdictOf("tcp", port);
          if (got !== (inRange ? TcAction.ok : TcAction.shot)) wrong.push(`tcp/${port}: got ${got}, want ${inRange ? "pass" : "drop"}`);
        }
      }
      // Every port of one whole range, and the same ports over udp (no udp entry: default deny).
      for (let port = RANGES[63]!.from; port <= RANGES[63]!.to; port++) if (verdictOf("tcp", port) !== TcAction.ok) wrong.push(`tcp/${port}: dropped inside the last range`);
      if (verdictOf("udp", RANGES[0]!.from) !== TcAction.shot) wrong.push("udp in a tcp range passed");
      expect(wrong, "ports with the wrong verdict").toEqual([]);
    } finally {
      dp.policy.deleteMany(entries.map(([k]) => k));
    }
  });

  it("bpf - the longest prefix decides inside a protocol, and a deny on any protocol wins over an allowed port", () => {
    // tcp 8000-8191 allowed (one /3 block of 8192 ports would be too wide: a /7 is 512 ports)
    const allow: [PolicyKey, PolicyValue] = [{ srcId: WEB, dstId: API, proto: TCP, port: 7680, portBits: 7 }, { verdict: "allow" }]; // 7680-8191
    const deny: [PolicyKey, PolicyValue] = [exactPortKey(WEB, API, TCP, 8000), { verdict: "deny" }]; // a narrower deny inside it
    dp.policy.setMany([allow, deny]);
    try {
      expect(verdictOf("tcp", 7680), "tcp/7680: first port of the /7 block").toBe(TcAction.ok);
      expect(verdictOf("tcp", 8191), "tcp/8191: last port of the block").toBe(TcAction.ok);
      expect(verdictOf("tcp", 8000), "tcp/8000: the longer prefix (deny) decides").toBe(TcAction.shot);
      expect(verdictOf("tcp", 8192), "tcp/8192: outside, default deny").toBe(TcAction.shot);
      const before = (dp.counters.get({ srcId: WEB, dstId: API }) ?? zeroCounters()).drops[DropReason.policyDeny] ?? 0n;
      dp.policy.set(anyPortKey(WEB, API, 0), { verdict: "deny" });
      expect(verdictOf("tcp", 7700), "tcp/7700 allowed, but any protocol denied: deny wins").toBe(TcAction.shot);
      expect(verdictOf("udp", 53), "udp/53: any protocol denied").toBe(TcAction.shot);
      const after = (dp.counters.get({ srcId: WEB, dstId: API }) ?? zeroCounters()).drops[DropReason.policyDeny] ?? 0n;
      expect(after - before, "both counted as policy denies").toBe(2n);
      dp.policy.delete(anyPortKey(WEB, API, 0));
      dp.policy.set(anyPortKey(WEB, API, 0), { verdict: "allow" });
      expect(verdictOf("udp", 53), "udp/53: any protocol allowed").toBe(TcAction.ok);
      expect(verdictOf("tcp", 8000), "tcp/8000: its own deny still wins over any-protocol allow").toBe(TcAction.shot);
    } finally {
      dp.policy.deleteMany([allow[0], deny[0], anyPortKey(WEB, API, 0)].filter((k) => dp.policy.get(k) !== undefined));
    }
  });

  it("bpf - an allow for every port of udp is one entry and passes any udp port", () => {
    dp.policy.set(anyPortKey(WEB, API, UDP), { verdict: "allow" });
    try {
      expect([0, 1, 53, 65535].map((p) => verdictOf("udp", p)), "udp ports 0, 1, 53, 65535").toEqual([TcAction.ok, TcAction.ok, TcAction.ok, TcAction.ok]);
      expect(verdictOf("tcp", 53), "tcp/53 is another protocol").toBe(TcAction.shot);
    } finally {
      dp.policy.delete(anyPortKey(WEB, API, UDP));
    }
  });
});

describe.skipIf(!isRoot)("bpf - migration from the per-port policy hash map", () => {
  let bpffs: ScratchBpffs | undefined;
  let pinDir: string;

  beforeAll(() => {
    bpffs = mountScratchBpffs("wbt-lpmfs-");
    pinDir = bpffs.pinDir;
  });
  afterAll(() => bpffs?.remove());

  it("bpf - the old weft_policy pin is left alone by open, the new map is created beside it, and removeRetiredPins unpins the old one", () => {
    // What an older agent left pinned: the hash map with 12-byte per-port keys.
    const first = TcDatapath.open({ pinDir });
    first.close();
    const oldPath = join(pinDir, "maps", "weft_policy");
    const old = BpfMap.create({ type: MapType.hash, name: "weft_policy", keySize: 12, valueSize: 4, maxEntries: 65536, flags: 1 /* BPF_F_NO_PREALLOC */ });
    old.pin(oldPath);
    old.close();
    execFileSync("rm", ["-f", join(pinDir, "maps", MapName.policy)]);

    const dp = TcDatapath.open({ pinDir });
    try {
      expect(dp.pinOutcome[MapName.policy], "the LPM map, when only the old map was pinned").toBe("created");
      expect(existsSync(oldPath), "the old pin stays until the new map is filled and attached").toBe(true);
      expect(RETIRED_MAPS.map((r) => r.name), "retired maps").toContain("weft_policy");
      expect(dp.removeRetiredPins(), "removed").toEqual(["weft_policy"]);
      expect(existsSync(oldPath), "old pin after removeRetiredPins").toBe(false);
      expect(dp.removeRetiredPins(), "second call").toEqual([]);
    } finally {
      dp.close();
    }
  });
});
