/**
 * The TypeScript layouts and codes (layout.ts) against the C: struct sizes and member offsets from
 * the BTF clang wrote into bpf/dist/weft_tc.o (read with bpftool), and the verdict, drop-reason
 * and reserved-identity numbers parsed from the headers. Plus codec round trips.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { objectPath } from "./datapath.js";
import {
  DropReason,
  PolicyDefaultFlag,
  ReservedIdentity,
  Verdict,
  countersValueCodec,
  ipcacheKeyCodec,
  layouts,
  policyKeyCodec,
  policyValueCodec,
  sumCounters,
} from "./layout.js";
import { internetChecksum, ipv4Frame } from "./packet.js";

const lib = (name: string) => readFileSync(fileURLToPath(new URL(`../progs/lib/${name}`, import.meta.url)), "utf8");

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
}

function btfTypes(): BtfType[] {
  const obj = objectPath("weft_tc");
  if (!existsSync(obj)) throw new Error(`${obj} is missing: run bpf/build.sh (scripts/setup.sh does)`);
  return (JSON.parse(execFileSync("bpftool", ["btf", "dump", "file", obj, "-j"], { encoding: "utf8" })) as { types: BtfType[] }).types;
}

function sizeOf(types: Map<number, BtfType>, id: number): number {
  const t = types.get(id);
  if (!t) throw new Error(`BTF type ${id} missing`);
  if (t.kind === "TYPEDEF" || t.kind === "CONST" || t.kind === "VOLATILE") return sizeOf(types, t.type_id ?? 0);
  if (t.kind === "ARRAY") return (t.nr_elems ?? 0) * sizeOf(types, t.type_id ?? 0);
  if (t.size === undefined) throw new Error(`BTF type ${id} (${t.kind}) has no size`);
  return t.size;
}

function defines(text: string, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`\\b(${prefix}[A-Z_]+)\\s*=?\\s*(0x[0-9a-f]+|\\d+)\\b`, "gi"))) out[m[1] ?? ""] = Number(m[2]);
  return out;
}

const camel = (s: string) => s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

describe("bpf layout", () => {
  it("bpf - every TS struct layout matches the BTF of weft_tc.o (size, member names, offsets, sizes)", () => {
    const list = btfTypes();
    const byId = new Map(list.map((t) => [t.id, t]));
    for (const layout of Object.values(layouts)) {
      const s = list.find((t) => t.kind === "STRUCT" && t.name === layout.cName);
      expect(s, `struct ${layout.cName} in BTF`).toBeDefined();
      if (!s) continue;
      expect(s.size, `sizeof(struct ${layout.cName}): got TS ${layout.size}, want C ${s.size}`).toBe(layout.size);
      const c = Object.fromEntries((s.members ?? []).map((m) => [m.name, { offset: m.bits_offset / 8, size: sizeOf(byId, m.type_id) }]));
      expect(layout.fields, `members of struct ${layout.cName}`).toEqual(c);
    }
  });

  it("bpf - verdict and drop-reason codes match verdict.h", () => {
    const h = lib("verdict.h");
    const verdicts = defines(h, "WEFT_VERDICT_");
    const drops = defines(h, "WEFT_DROP_");
    expect(Object.fromEntries(Object.entries(verdicts).map(([k, v]) => [camel(k.slice("WEFT_VERDICT_".length)), v]))).toEqual(Verdict);
    expect(Object.fromEntries(Object.entries(drops).map(([k, v]) => [camel(k.slice("WEFT_DROP_".length)), v]))).toEqual(DropReason);
  });

  it("bpf - reserved identities and policy flags match ipcache.h and policy.h", () => {
    const ids = defines(lib("ipcache.h").replace(/#define\s+/g, ""), "WEFT_ID_");
    expect(Object.fromEntries(Object.entries(ids).map(([k, v]) => [camel(k.slice("WEFT_ID_".length)), v]))).toEqual(ReservedIdentity);
    const flags = defines(lib("policy.h").replace(/#define\s+/g, ""), "WEFT_POLICY_F_");
    expect(Object.fromEntries(Object.entries(flags).map(([k, v]) => [camel(k.slice("WEFT_POLICY_F_".length)), v]))).toEqual(PolicyDefaultFlag);
  });
});

describe("bpf codecs", () => {
  it("bpf - ipcache keys clear host bits, so non-canonical prefixes encode identically", () => {
    const got = ipcacheKeyCodec.encode({ addr: "10.1.2.3", prefixlen: 8 });
    const want = ipcacheKeyCodec.encode({ addr: "10.0.0.0", prefixlen: 8 });
    expect(got.toString("hex"), `got ${got.toString("hex")}, want ${want.toString("hex")}`).toBe(want.toString("hex"));
    expect(ipcacheKeyCodec.decode(got)).toEqual({ addr: "10.0.0.0", prefixlen: 8 });
    expect(ipcacheKeyCodec.encode({ addr: "1.2.3.4", prefixlen: 0 }).toString("hex")).toBe("0000000000000000");
    expect(() => ipcacheKeyCodec.encode({ addr: "10.0.0.256", prefixlen: 8 })).toThrow(/not an IPv4 address/);
    expect(() => ipcacheKeyCodec.encode({ addr: "10.0.0.0", prefixlen: 33 })).toThrow(/prefixlen/);
  });

  it("bpf - policy keys store dport in network order with zeroed padding", () => {
    const buf = policyKeyCodec.encode({ srcId: 0x01020304, dstId: 7, proto: 6, dport: 443 });
    expect(buf.toString("hex")).toBe("04030201" + "07000000" + "06" + "00" + "01bb");
    expect(policyKeyCodec.decode(buf)).toEqual({ srcId: 0x01020304, dstId: 7, proto: 6, dport: 443 });
    expect(() => policyKeyCodec.encode({ srcId: 1, dstId: 2, proto: 0, dport: 80 })).toThrow(/dport must be 0/);
    expect(() => policyKeyCodec.encode({ srcId: -1, dstId: 2, proto: 6, dport: 80 })).toThrow(/srcId must be a u32/);
  });

  it("bpf - policy values round-trip and unknown verdict codes fail closed", () => {
    expect(policyValueCodec.decode(policyValueCodec.encode({ verdict: "deny" }))).toEqual({ verdict: "deny" });
    expect(() => policyValueCodec.decode(Buffer.from([9, 0, 0, 0]))).toThrow(/unknown verdict code 9/);
  });

  it("bpf - per-CPU counters sum", () => {
    const one = countersValueCodec.decode(countersValueCodec.encode({ packets: 2n, bytes: 100n, drops: 1n }));
    expect(sumCounters([one, one, { packets: 0n, bytes: 0n, drops: 0n }])).toEqual({ packets: 4n, bytes: 200n, drops: 2n });
  });

  it("bpf - crafted frames have valid IPv4 header checksums and lengths", () => {
    for (const proto of ["tcp", "udp"] as const) {
      const f = ipv4Frame({ src: "10.0.0.1", dst: "10.0.0.2", proto, sport: 1000, dport: 53, payload: Buffer.from("hello") });
      const ip = f.subarray(14, 34);
      expect(internetChecksum(ip), `${proto} IPv4 header checksum`).toBe(0);
      expect(ip.readUInt16BE(2), `${proto} IPv4 total length`).toBe(f.length - 14);
    }
  });
});
