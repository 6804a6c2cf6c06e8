/**
 * The TypeScript side of bpf/progs/lib/lb.h (service load balancing): struct layouts, constants
 * and codecs of the weft_lb_* maps. Like layout.ts, checked against the BTF of the objects and
 * the header by layout.test.ts.
 */
import { COUNTERS_DROP_SLOTS, type Codec, type StructLayout } from "./layout.js";

const f = (offset: number, size: number) => ({ offset, size });

export const lbLayouts = {
  lbVipValue: { cName: "weft_lb_vip_value", size: 4, fields: { flags: f(0, 4) } },
  lbSourceValue: { cName: "weft_lb_source_value", size: 8, fields: { identity: f(0, 4), flags: f(4, 4) } },
  lbKey: { cName: "weft_lb_key", size: 12, fields: { vip: f(0, 4), port: f(4, 2), proto: f(6, 1), pad0: f(7, 1), src_id: f(8, 4) } },
  lbBackend: { cName: "weft_lb_backend", size: 8, fields: { addr: f(0, 4), port: f(4, 2), pad0: f(6, 2) } },
  lbService: {
    cName: "weft_lb_service",
    size: 1552,
    fields: { algo: f(0, 1), count: f(1, 1), table_len: f(2, 2), rate: f(4, 4), burst: f(8, 4), pad0: f(12, 4), backends: f(16, 512), table: f(528, 1024) },
  },
  lbRrValue: { cName: "weft_lb_rr_value", size: 8, fields: { next: f(0, 8) } },
  lbRateKey: { cName: "weft_lb_rate_key", size: 8, fields: { src_id: f(0, 4), vip: f(4, 4) } },
  lbRateValue: { cName: "weft_lb_rate_value", size: 8, fields: { tat_ns: f(0, 8) } },
  lbStatsKey: { cName: "weft_lb_stats_key", size: 16, fields: { vip: f(0, 4), backend: f(4, 4), port: f(8, 2), bport: f(10, 2), proto: f(12, 1), pad0: f(13, 3) } },
  lbStatsValue: {
    cName: "weft_lb_stats_value",
    size: 64,
    fields: { active: f(0, 8), connects: f(8, 8), failures: f(16, 8), established: f(24, 8), latency_sum_ns: f(32, 8), reserved: f(40, 24) },
  },
  lbSockKey: { cName: "weft_lb_sock_key", size: 16, fields: { cookie: f(0, 8), backend: f(8, 4), bport: f(12, 2), proto: f(14, 1), pad0: f(15, 1) } },
  lbSockValue: { cName: "weft_lb_sock_value", size: 16, fields: { vip: f(0, 4), port: f(4, 2), pad0: f(6, 2), start_ns: f(8, 8) } },
  lbDropsValue: { cName: "weft_lb_drops_value", size: 64, fields: { drops: f(0, 64) } },
  lbFlowKey: { cName: "weft_lb_flow_key", size: 16, fields: { saddr: f(0, 4), daddr: f(4, 4), sport: f(8, 2), dport: f(10, 2), proto: f(12, 1), pad0: f(13, 3) } },
  lbNatValue: { cName: "weft_lb_nat_value", size: 8, fields: { addr: f(0, 4), port: f(4, 2), pad0: f(6, 2) } },
} as const satisfies Record<string, StructLayout<string>>;

/** lb.h WEFT_LB_MAX_BACKENDS: backends one service entry holds. */
export const LB_MAX_BACKENDS = 64;
/** lb.h WEFT_LB_TABLE_SIZE: slots of the selection table (a power of two). */
export const LB_TABLE_SIZE = 1024;

/** lb.h WEFT_LB_* selection algorithms. Never renumber. */
export const LbAlgorithm = { roundRobin: 1, leastConnections: 2, weighted: 3, ewma: 4 } as const;
export type LbAlgorithmName = keyof typeof LbAlgorithm;

/** Names of the lb maps (pinned at `<pinDir>/maps/<name>`, shared by the socket and tc programs). */
export const LbMapName = {
  vips: "weft_lb_vips",
  sources: "weft_lb_sources",
  services: "weft_lb_services",
  rr: "weft_lb_rr",
  ratelimit: "weft_lb_ratelimit",
  stats: "weft_lb_stats",
  socks: "weft_lb_socks",
  /** One value for all CPUs; replaced the per-CPU `weft_lb_drops` (RETIRED_MAPS in layout.ts). */
  drops: "weft_lb_drops_v2",
  nat: "weft_lb_nat",
  rnat: "weft_lb_rnat",
} as const;

const L = lbLayouts;

function zeroed(size: number): Buffer {
  return Buffer.allocUnsafe(size).fill(0);
}

function ipv4Bytes(addr: string): Buffer {
  const parts = addr.split(".");
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((b) => !(b >= 0 && b <= 255))) throw new RangeError(`not an IPv4 address: ${addr}`);
  return Buffer.from(bytes);
}

function ipv4String(buf: Buffer, offset: number): string {
  return [0, 1, 2, 3].map((i) => buf[offset + i]).join(".");
}

function check(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer 0..${max}, got ${v}`);
  return v;
}

/** weft_lb_vips value (flags reserved). */
export type LbVipValue = Record<never, never>;
export const lbVipValueCodec: Codec<LbVipValue> = {
  size: L.lbVipValue.size,
  encode: () => zeroed(L.lbVipValue.size),
  decode: () => ({}),
};

/** A network namespace cookie (weft_lb_sources key): a u64 in host order. */
export const netnsCookieCodec: Codec<bigint> = {
  size: 8,
  encode(cookie) {
    const buf = zeroed(8);
    buf.writeBigUInt64LE(cookie, 0);
    return buf;
  },
  decode: (buf, offset = 0) => buf.readBigUInt64LE(offset),
};

export interface LbSourceValue {
  identity: number;
}
export const lbSourceValueCodec: Codec<LbSourceValue> = {
  size: L.lbSourceValue.size,
  encode({ identity }) {
    const buf = zeroed(L.lbSourceValue.size);
    buf.writeUInt32LE(check("identity", identity, 0xffffffff), L.lbSourceValue.fields.identity.offset);
    return buf;
  },
  decode: (buf, offset = 0) => ({ identity: buf.readUInt32LE(offset + L.lbSourceValue.fields.identity.offset) }),
};

/** A service port as one source identity sees it. Ports in host terms (the codec writes network order). */
export interface LbKey {
  vip: string;
  port: number;
  /** 6 (tcp) or 17 (udp). */
  proto: number;
  srcId: number;
}
export const lbKeyCodec: Codec<LbKey> = {
  size: L.lbKey.size,
  encode({ vip, port, proto, srcId }) {
    const F = L.lbKey.fields;
    const buf = zeroed(L.lbKey.size);
    ipv4Bytes(vip).copy(buf, F.vip.offset);
    buf.writeUInt16BE(check("port", port, 0xffff), F.port.offset);
    buf.writeUInt8(check("proto", proto, 0xff), F.proto.offset);
    buf.writeUInt32LE(check("srcId", srcId, 0xffffffff), F.src_id.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    const F = L.lbKey.fields;
    return {
      vip: ipv4String(buf, offset + F.vip.offset),
      port: buf.readUInt16BE(offset + F.port.offset),
      proto: buf.readUInt8(offset + F.proto.offset),
      srcId: buf.readUInt32LE(offset + F.src_id.offset),
    };
  },
};

export interface LbBackend {
  addr: string;
  port: number;
}

/** One weft_lb_services value: the backends a source may use and the selection table over them. */
export interface LbService {
  algo: LbAlgorithmName;
  /** New connections per second per source identity; 0 = unlimited. */
  rate: number;
  burst: number;
  /** At most LB_MAX_BACKENDS. */
  backends: LbBackend[];
  /** Indices into backends, at most LB_TABLE_SIZE; empty = refuse every connection. */
  table: number[];
}

export const lbServiceCodec: Codec<LbService> = {
  size: L.lbService.size,
  encode({ algo, rate, burst, backends, table }) {
    const F = L.lbService.fields;
    const code = LbAlgorithm[algo] as number | undefined;
    if (code === undefined) throw new RangeError(`unknown algorithm ${String(algo)}`);
    if (backends.length > LB_MAX_BACKENDS) throw new RangeError(`${backends.length} backends; at most ${LB_MAX_BACKENDS}`);
    if (table.length > LB_TABLE_SIZE) throw new RangeError(`table of ${table.length} slots; at most ${LB_TABLE_SIZE}`);
    const buf = zeroed(L.lbService.size);
    buf.writeUInt8(code, F.algo.offset);
    buf.writeUInt8(backends.length, F.count.offset);
    buf.writeUInt16LE(table.length, F.table_len.offset);
    buf.writeUInt32LE(check("rate", rate, 0xffffffff), F.rate.offset);
    buf.writeUInt32LE(check("burst", burst, 0xffffffff), F.burst.offset);
    backends.forEach((b, i) => {
      const at = F.backends.offset + i * L.lbBackend.size;
      ipv4Bytes(b.addr).copy(buf, at + L.lbBackend.fields.addr.offset);
      buf.writeUInt16BE(check("backend port", b.port, 0xffff), at + L.lbBackend.fields.port.offset);
    });
    table.forEach((idx, i) => {
      if (!Number.isInteger(idx) || idx < 0 || idx >= backends.length) throw new RangeError(`table[${i}] = ${idx} is not a backend index (0..${backends.length - 1})`);
      buf.writeUInt8(idx, F.table.offset + i);
    });
    return buf;
  },
  decode(buf, offset = 0) {
    const F = L.lbService.fields;
    const codeAt = buf.readUInt8(offset + F.algo.offset);
    const algo = (Object.keys(LbAlgorithm) as LbAlgorithmName[]).find((k) => LbAlgorithm[k] === codeAt);
    if (!algo) throw new RangeError(`service value holds unknown algorithm ${codeAt}`);
    const count = buf.readUInt8(offset + F.count.offset);
    const len = buf.readUInt16LE(offset + F.table_len.offset);
    const backends: LbBackend[] = [];
    for (let i = 0; i < count; i++) {
      const at = offset + F.backends.offset + i * L.lbBackend.size;
      backends.push({ addr: ipv4String(buf, at), port: buf.readUInt16BE(at + L.lbBackend.fields.port.offset) });
    }
    const table: number[] = [];
    for (let i = 0; i < len; i++) table.push(buf.readUInt8(offset + F.table.offset + i));
    return { algo, rate: buf.readUInt32LE(offset + F.rate.offset), burst: buf.readUInt32LE(offset + F.burst.offset), backends, table };
  },
};

/** A service port and one of its backends (weft_lb_stats key). Ports in host terms. */
export interface LbStatsKey {
  vip: string;
  port: number;
  proto: number;
  backend: string;
  backendPort: number;
}
export const lbStatsKeyCodec: Codec<LbStatsKey> = {
  size: L.lbStatsKey.size,
  encode({ vip, port, proto, backend, backendPort }) {
    const F = L.lbStatsKey.fields;
    const buf = zeroed(L.lbStatsKey.size);
    ipv4Bytes(vip).copy(buf, F.vip.offset);
    ipv4Bytes(backend).copy(buf, F.backend.offset);
    buf.writeUInt16BE(check("port", port, 0xffff), F.port.offset);
    buf.writeUInt16BE(check("backendPort", backendPort, 0xffff), F.bport.offset);
    buf.writeUInt8(check("proto", proto, 0xff), F.proto.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    const F = L.lbStatsKey.fields;
    return {
      vip: ipv4String(buf, offset + F.vip.offset),
      backend: ipv4String(buf, offset + F.backend.offset),
      port: buf.readUInt16BE(offset + F.port.offset),
      backendPort: buf.readUInt16BE(offset + F.bport.offset),
      proto: buf.readUInt8(offset + F.proto.offset),
    };
  },
};

export interface LbStatsValue {
  /** TCP connections open now (socket path). */
  active: bigint;
  connects: bigint;
  /** TCP connects never established. */
  failures: bigint;
  established: bigint;
  /** Connect-to-established time summed over `established`, in ns. */
  latencySumNs: bigint;
}
export const lbStatsValueCodec: Codec<LbStatsValue> = {
  size: L.lbStatsValue.size,
  encode({ active, connects, failures, established, latencySumNs }) {
    const F = L.lbStatsValue.fields;
    const buf = zeroed(L.lbStatsValue.size);
    buf.writeBigInt64LE(active, F.active.offset);
    buf.writeBigUInt64LE(connects, F.connects.offset);
    buf.writeBigUInt64LE(failures, F.failures.offset);
    buf.writeBigUInt64LE(established, F.established.offset);
    buf.writeBigUInt64LE(latencySumNs, F.latency_sum_ns.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    const F = L.lbStatsValue.fields;
    return {
      active: buf.readBigInt64LE(offset + F.active.offset),
      connects: buf.readBigUInt64LE(offset + F.connects.offset),
      failures: buf.readBigUInt64LE(offset + F.failures.offset),
      established: buf.readBigUInt64LE(offset + F.established.offset),
      latencySumNs: buf.readBigUInt64LE(offset + F.latency_sum_ns.offset),
    };
  },
};

/** weft_lb_drops / weft_lb_ratelimit key. */
export interface LbRateKey {
  srcId: number;
  vip: string;
}
export const lbRateKeyCodec: Codec<LbRateKey> = {
  size: L.lbRateKey.size,
  encode({ srcId, vip }) {
    const buf = zeroed(L.lbRateKey.size);
    buf.writeUInt32LE(check("srcId", srcId, 0xffffffff), L.lbRateKey.fields.src_id.offset);
    ipv4Bytes(vip).copy(buf, L.lbRateKey.fields.vip.offset);
    return buf;
  },
  decode: (buf, offset = 0) => ({ srcId: buf.readUInt32LE(offset + L.lbRateKey.fields.src_id.offset), vip: ipv4String(buf, offset + L.lbRateKey.fields.vip.offset) }),
};

export interface LbDropsValue {
  /** Refused new connections by drop-reason code: drops[DropReason.rateLimited]. */
  drops: bigint[];
}
export const lbDropsValueCodec: Codec<LbDropsValue> = {
  size: L.lbDropsValue.size,
  encode({ drops }) {
    if (drops.length > COUNTERS_DROP_SLOTS) throw new RangeError(`drops has ${drops.length} slots, at most ${COUNTERS_DROP_SLOTS}`);
    const buf = zeroed(L.lbDropsValue.size);
    drops.forEach((d, i) => buf.writeBigUInt64LE(d, i * 8));
    return buf;
  },
  decode: (buf, offset = 0) => ({ drops: Array.from({ length: COUNTERS_DROP_SLOTS }, (_, i) => buf.readBigUInt64LE(offset + i * 8)) }),
};

/** A flow of the tc fallback (weft_lb_nat / weft_lb_rnat key). Ports in host terms. */
export interface LbFlowKey {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: number;
}
export const lbFlowKeyCodec: Codec<LbFlowKey> = {
  size: L.lbFlowKey.size,
  encode({ saddr, daddr, sport, dport, proto }) {
    const F = L.lbFlowKey.fields;
    const buf = zeroed(L.lbFlowKey.size);
    ipv4Bytes(saddr).copy(buf, F.saddr.offset);
    ipv4Bytes(daddr).copy(buf, F.daddr.offset);
    buf.writeUInt16BE(check("sport", sport, 0xffff), F.sport.offset);
    buf.writeUInt16BE(check("dport", dport, 0xffff), F.dport.offset);
    buf.writeUInt8(check("proto", proto, 0xff), F.proto.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    const F = L.lbFlowKey.fields;
    return {
      saddr: ipv4String(buf, offset + F.saddr.offset),
      daddr: ipv4String(buf, offset + F.daddr.offset),
      sport: buf.readUInt16BE(offset + F.sport.offset),
      dport: buf.readUInt16BE(offset + F.dport.offset),
      proto: buf.readUInt8(offset + F.proto.offset),
    };
  },
};

export const lbNatValueCodec: Codec<LbBackend> = {
  size: L.lbNatValue.size,
  encode({ addr, port }) {
    const buf = zeroed(L.lbNatValue.size);
    ipv4Bytes(addr).copy(buf, L.lbNatValue.fields.addr.offset);
    buf.writeUInt16BE(check("port", port, 0xffff), L.lbNatValue.fields.port.offset);
    return buf;
  },
  decode: (buf, offset = 0) => ({ addr: ipv4String(buf, offset), port: buf.readUInt16BE(offset + L.lbNatValue.fields.port.offset) }),
};
