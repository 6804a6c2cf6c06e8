/**
 * The TypeScript layouts and codes (layout.ts) against the C: struct sizes and member offsets from
 * the BTF clang wrote into every bpf/dist/<program>.o (read with bpftool), and the verdict,
 * drop-reason, reserved-identity, mark and VXLAN MAC constants parsed from the headers. Plus codec
 * round trips.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DATAPATH_PROGRAMS, objectPath } from "./datapath.js";
import { LB_MAX_BACKENDS, LB_TABLE_SIZE, LbAlgorithm, LbMapName, lbKeyCodec, lbLayouts, lbServiceCodec, lbStatsKeyCodec } from "./lb-layout.js";
import { SOCK_PROGRAMS } from "./sock.js";
import {
  COUNTERS_DROP_SLOTS,
  DropReason,
  WEFT_MARK_ENFORCED,
  WEFT_VNI_MAX,
  WEFT_VXLAN_MAC,
  configValueCodec,
  dropReasonName,
  ipv4AddrCodec,
  totalDrops,
  tunnelValueCodec,
  zeroCounters,
  PolicyDefaultFlag,
  ReservedIdentity,
  Verdict,
  countersValueCodec,
  ipcacheKeyCodec,
  layouts,
  policyKeyCodec,
  policyValueCodec,
  anyPortKey,
  exactPortKey,
  MapName,
  POLICY_FIXED_BITS,
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

function btfTypes(program: string): BtfType[] {
  const obj = objectPath(program);
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
  it("bpf - every TS struct layout matches the BTF of every object that has it (size, member names, offsets, sizes)", () => {
    const seen = new Set<string>();
    for (const program of [...DATAPATH_PROGRAMS, ...SOCK_PROGRAMS.map((p) => p.name)]) {
      const list = btfTypes(program);
      const byId = new Map(list.map((t) => [t.id, t]));
      for (const layout of [...Object.values(layouts), ...Object.values(lbLayouts)]) {
        const s = list.find((t) => t.kind === "STRUCT" && t.name === layout.cName);
        if (!s) continue;
        seen.add(layout.cName);
        expect(s.size, `${program}.o sizeof(struct ${layout.cName}): got TS ${layout.size}, want C ${s.size}`).toBe(layout.size);
        const c = Object.fromEntries((s.members ?? []).map((m) => [m.name, { offset: m.bits_offset / 8, size: sizeOf(byId, m.type_id) }]));
        expect(layout.fields, `${program}.o members of struct ${layout.cName}`).toEqual(c);
      }
    }
    const missing = [...Object.values(layouts), ...Object.values(lbLayouts)].map((l) => l.cName).filter((n) => !seen.has(n));
    expect(missing, "structs of layout.ts found in no object's BTF").toEqual([]);
  });

  it("bpf - every object declares the maps of the headers it includes with the TS sizes", () => {
    const maps = JSON.parse(execFileSync("bpftool", ["btf", "dump", "file", objectPath("weft_vxlan_in"), "-j"], { encoding: "utf8" })) as { types: BtfType[] };
    const vars = maps.types.filter((t) => t.kind === "VAR").map((t) => t.name);
    for (const name of ["weft_ipcache", MapName.policy, "weft_policy_default", MapName.counters, "weft_tunnel_peers"]) expect(vars, `weft_vxlan_in.o declares ${name}`).toContain(name);
  });

  it("bpf - verdict and drop-reason codes match verdict.h", () => {
    const h = lib("verdict.h");
    const verdicts = defines(h, "WEFT_VERDICT_");
    const drops = defines(h, "WEFT_DROP_");
    expect(Object.fromEntries(Object.entries(verdicts).map(([k, v]) => [camel(k.slice("WEFT_VERDICT_".length)), v]))).toEqual(Verdict);
    expect(Object.fromEntries(Object.entries(drops).map(([k, v]) => [camel(k.slice("WEFT_DROP_".length)), v]))).toEqual(DropReason);
  });

  it("bpf - the mark bit, the VXLAN MAC, the VNI limit and the drop slots match mark.h, tunnel.h and counters.h", () => {
    const mark = defines(lib("mark.h").replace(/#define\s+/g, ""), "WEFT_MARK_");
    expect(mark, "mark.h").toEqual({ WEFT_MARK_ENFORCED });
    expect(WEFT_MARK_ENFORCED.toString(2).replace(/0/g, ""), "exactly one mark bit").toBe("1");
    const tunnel = defines(lib("tunnel.h").replace(/#define\s+/g, ""), "WEFT_");
    const macBytes = [...lib("tunnel.h").matchAll(/#define\s+WEFT_VXLAN_MAC_(\d)\s+(0x[0-9a-f]+)/gi)].map((m) => [Number(m[1]), Number(m[2])] as const);
    const mac = macBytes.sort(([a], [b]) => a - b).map(([, v]) => v.toString(16).padStart(2, "0")).join(":");
    expect(mac, `tunnel.h WEFT_VXLAN_MAC_*: got ${mac}, want ${WEFT_VXLAN_MAC}`).toBe(WEFT_VXLAN_MAC);
    expect(tunnel.WEFT_VNI_MAX).toBe(WEFT_VNI_MAX);
    const counters = defines(lib("counters.h").replace(/#define\s+/g, ""), "WEFT_COUNTERS_");
    expect(counters.WEFT_COUNTERS_DROP_SLOTS).toBe(COUNTERS_DROP_SLOTS);
    expect(Math.max(...Object.values(DropReason)), "every drop reason has a counter slot").toBeLessThan(COUNTERS_DROP_SLOTS);
    expect(layouts.countersValue.fields.drops.size).toBe(8 * COUNTERS_DROP_SLOTS);
  });

  it("bpf - lb.h: table size, backend limit and algorithm codes match; the socket objects and the workload tc objects declare the lb maps", () => {
    const lb = defines(lib("lb.h").replace(/#define\s+/g, ""), "WEFT_LB_");
    expect([lb.WEFT_LB_MAX_BACKENDS, lb.WEFT_LB_TABLE_SIZE]).toEqual([LB_MAX_BACKENDS, LB_TABLE_SIZE]);
    expect({ roundRobin: lb.WEFT_LB_ROUND_ROBIN, leastConnections: lb.WEFT_LB_LEAST_CONN, weighted: lb.WEFT_LB_WEIGHTED, ewma: lb.WEFT_LB_EWMA }).toEqual(LbAlgorithm);
    for (const program of ["weft_sock_connect4", "weft_from_workload", "weft_to_workload"]) {
      const vars = (JSON.parse(execFileSync("bpftool", ["btf", "dump", "file", objectPath(program), "-j"], { encoding: "utf8" })) as { types: BtfType[] }).types.filter((t) => t.kind === "VAR").map((t) => t.name);
      for (const name of ["weft_lb_vips", "weft_lb_services", "weft_lb_stats", LbMapName.drops]) expect(vars, `${program}.o declares ${name}`).toContain(name);
    }
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

  it("bpf - policy keys are LPM keys: prefix length over the fixed 80 bits plus the port bits, the port in network order, padding zeroed", () => {
    const buf = policyKeyCodec.encode({ srcId: 0x01020304, dstId: 7, proto: 6, port: 443, portBits: 16 });
    expect(buf.toString("hex")).toBe("60000000" + "04030201" + "07000000" + "06" + "00" + "01bb");
    expect(policyKeyCodec.decode(buf)).toEqual({ srcId: 0x01020304, dstId: 7, proto: 6, port: 443, portBits: 16 });
    const block = policyKeyCodec.encode({ srcId: 1, dstId: 2, proto: 17, port: 1024, portBits: 6 });
    expect(block.readUInt32LE(0), "prefixlen of a /6 port block").toBe(POLICY_FIXED_BITS + 6);
    expect(policyKeyCodec.decode(block)).toEqual({ srcId: 1, dstId: 2, proto: 17, port: 1024, portBits: 6 });
    expect(policyKeyCodec.decode(policyKeyCodec.encode(anyPortKey(1, 2, 0))), "any protocol").toEqual({ srcId: 1, dstId: 2, proto: 0, port: 0, portBits: 0 });
    expect(exactPortKey(1, 2, 6, 80)).toEqual({ srcId: 1, dstId: 2, proto: 6, port: 80, portBits: 16 });
    expect(() => policyKeyCodec.encode({ srcId: 1, dstId: 2, proto: 0, port: 80, portBits: 16 })).toThrow(/proto 0 \(any\) covers every port/);
    expect(() => policyKeyCodec.encode({ srcId: 1, dstId: 2, proto: 6, port: 1025, portBits: 6 })).toThrow(/bits set past its 6-bit prefix/);
    expect(() => policyKeyCodec.encode({ srcId: 1, dstId: 2, proto: 6, port: 0, portBits: 17 })).toThrow(/portBits must be 0..16/);
    expect(() => policyKeyCodec.encode({ srcId: -1, dstId: 2, proto: 6, port: 80, portBits: 16 })).toThrow(/srcId must be a u32/);
  });

  it("bpf - policy values round-trip and unknown verdict codes fail closed", () => {
    expect(policyValueCodec.decode(policyValueCodec.encode({ verdict: "deny" }))).toEqual({ verdict: "deny" });
    expect(() => policyValueCodec.decode(Buffer.from([9, 0, 0, 0]))).toThrow(/unknown verdict code 9/);
  });

  it("bpf - per-CPU counters sum, per drop reason", () => {
    const drops = zeroCounters().drops;
    drops[DropReason.policyDeny] = 1n;
    drops[DropReason.tunnelSource] = 3n;
    const buf = countersValueCodec.encode({ packets: 2n, bytes: 100n, drops });
    expect(buf.readBigUInt64LE(16 + 8 * DropReason.tunnelSource), "drops[tunnelSource] at offset 16 + 8 * 4").toBe(3n);
    const one = countersValueCodec.decode(buf);
    expect([one.packets, one.bytes], "decoded back").toEqual([2n, 100n]);
    expect(one.drops[DropReason.policyDeny]).toBe(1n);
    expect(one.drops[DropReason.tunnelSource]).toBe(3n);
    expect(totalDrops(one)).toBe(4n);
    expect(dropReasonName(4)).toBe("tunnelSource");
    expect(dropReasonName(7)).toBe("noBackend");
    expect(dropReasonName(9)).toBe("reason9");
  });

  it("bpf - tunnel, peer and config codecs keep addresses in network order", () => {
    expect(tunnelValueCodec.encode({ remote: "192.168.1.2" }).toString("hex")).toBe("c0a80102" + "00000000");
    expect(tunnelValueCodec.decode(tunnelValueCodec.encode({ remote: "10.0.0.9" }))).toEqual({ remote: "10.0.0.9" });
    expect(ipv4AddrCodec.encode("10.1.2.3").toString("hex")).toBe("0a010203");
    const cfg = configValueCodec.encode({ vxlanIfindex: 7 });
    expect(cfg.length).toBe(32);
    expect(cfg.toString("hex")).toBe("07000000" + "00".repeat(28));
    expect(configValueCodec.decode(cfg)).toEqual({ vxlanIfindex: 7 });
  });

  it("bpf - lb codecs: ports in network order, the service value's table indexes its backends", () => {
    expect(lbKeyCodec.encode({ vip: "100.96.0.1", port: 80, proto: 6, srcId: 0x01020304 }).toString("hex")).toBe("64600001" + "0050" + "06" + "00" + "04030201");
    const svc = { algo: "weighted" as const, rate: 5, burst: 7, backends: [{ addr: "10.0.0.1", port: 8080 }, { addr: "10.0.0.2", port: 8081 }], table: [0, 1, 1] };
    expect(lbServiceCodec.decode(lbServiceCodec.encode(svc))).toEqual(svc);
    expect(() => lbServiceCodec.encode({ ...svc, table: [2] }), "an index past the backends").toThrow(/not a backend index/);
    expect(() => lbServiceCodec.encode({ ...svc, backends: Array.from({ length: 65 }, () => svc.backends[0]!) })).toThrow(/at most 64/);
    expect(lbStatsKeyCodec.decode(lbStatsKeyCodec.encode({ vip: "100.96.0.1", port: 80, proto: 6, backend: "10.0.0.1", backendPort: 8080 }))).toEqual({ vip: "100.96.0.1", port: 80, proto: 6, backend: "10.0.0.1", backendPort: 8080 });
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
