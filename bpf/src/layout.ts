/**
 * The one place of truth, on the TypeScript side, for the C structs and codes in bpf/progs/lib/*.h:
 * byte offsets and sizes of every field (padding included), the reserved identities, the verdict
 * and drop-reason codes, and the codecs built on them. layout.test.ts checks all of it against
 * the BTF that clang emits for bpf/dist/*.o and against the headers (verdict.h, mark.h, tunnel.h, …).
 */

export interface FieldLayout {
  readonly offset: number;
  readonly size: number;
}

export interface StructLayout<F extends string> {
  /** The C struct's name (without `struct`). */
  readonly cName: string;
  readonly size: number;
  readonly fields: Readonly<Record<F, FieldLayout>>;
}

const f = (offset: number, size: number): FieldLayout => ({ offset, size });

export const layouts = {
  ipcacheKey: { cName: "weft_ipcache_key", size: 8, fields: { prefixlen: f(0, 4), addr: f(4, 4) } },
  ipcacheValue: { cName: "weft_ipcache_value", size: 8, fields: { identity: f(0, 4), flags: f(4, 4) } },
  policyKey: {
    cName: "weft_policy_key",
    size: 16,
    fields: { prefixlen: f(0, 4), src_id: f(4, 4), dst_id: f(8, 4), proto: f(12, 1), pad0: f(13, 1), dport: f(14, 2) },
  },
  policyValue: { cName: "weft_policy_value", size: 4, fields: { verdict: f(0, 1), flags: f(1, 1), pad0: f(2, 2) } },
  policyDefaultValue: { cName: "weft_policy_default_value", size: 4, fields: { flags: f(0, 1), pad0: f(1, 3) } },
  countersKey: { cName: "weft_counters_key", size: 8, fields: { src_id: f(0, 4), dst_id: f(4, 4) } },
  countersValue: { cName: "weft_counters_value", size: 80, fields: { packets: f(0, 8), bytes: f(8, 8), drops: f(16, 64) } },
  tunnelKey: { cName: "weft_tunnel_key", size: 8, fields: { prefixlen: f(0, 4), addr: f(4, 4) } },
  tunnelValue: { cName: "weft_tunnel_value", size: 8, fields: { remote: f(0, 4), flags: f(4, 4) } },
  tunnelPeerValue: { cName: "weft_tunnel_peer_value", size: 4, fields: { flags: f(0, 4) } },
  ctKey: {
    cName: "weft_ct_key",
    size: 16,
    fields: { saddr: f(0, 4), daddr: f(4, 4), sport: f(8, 2), dport: f(10, 2), proto: f(12, 1), pad0: f(13, 3) },
  },
  ctValue: { cName: "weft_ct_value", size: 8, fields: { last_sent_ns: f(0, 8) } },
  endpointValue: { cName: "weft_endpoint_value", size: 8, fields: { addr: f(0, 4), identity: f(4, 4) } },
  config: { cName: "weft_config", size: 32, fields: { vxlan_ifindex: f(0, 4), pad0: f(4, 4), reserved: f(8, 24) } },
} as const satisfies Record<string, StructLayout<string>>;

/** Reserved identities (ipcache.h WEFT_ID_*). Never renumber. */
export const ReservedIdentity = { unknown: 0, host: 1, world: 2, controller: 3 } as const;

/** enum weft_verdict (verdict.h). Never renumber. */
export const Verdict = { none: 0, allow: 1, deny: 2 } as const;
export type VerdictName = Exclude<keyof typeof Verdict, "none">;

/** enum weft_drop_reason (verdict.h). Never renumber; new reasons are appended. */
export const DropReason = { none: 0, policyDeny: 1, defaultDeny: 2, malformed: 3, tunnelSource: 4, spoofed: 5, rateLimited: 6, noBackend: 7 } as const;
export type DropReasonName = keyof typeof DropReason;

/** The name of a drop-reason code (`policyDeny`), or `reason<n>` for a code this build does not know. */
export function dropReasonName(code: number): DropReasonName | `reason${number}` {
  const name = (Object.keys(DropReason) as DropReasonName[]).find((k) => DropReason[k] === code);
  return name ?? `reason${code}`;
}

/** Slots of CountersValue.drops (counters.h WEFT_COUNTERS_DROP_SLOTS): drops[code] per drop reason. */
export const COUNTERS_DROP_SLOTS = 8;

/**
 * The skb->mark bit Weft owns (mark.h WEFT_MARK_ENFORCED): "policy already enforced", set by
 * weft_overlay_in and weft_vxlan_in on pass, cleared by weft_to_workload (which then does not
 * check again) and by weft_from_workload. No other mark bit is touched.
 */
export const WEFT_MARK_ENFORCED = 0x01000000;

/** The MAC address of every Weft VXLAN device (tunnel.h WEFT_VXLAN_MAC_*); senders write it as the inner destination. */
export const WEFT_VXLAN_MAC = "02:77:65:66:74:00";

/** The largest identity a VXLAN VNI can carry (24 bits); larger source identities go through WireGuard. */
export const WEFT_VNI_MAX = 0xffffff;

/** WEFT_POLICY_F_* (policy.h). */
export const PolicyDefaultFlag = { defaultDeny: 0x1 } as const;

/** Bits of a policy key always matched: src, dst, proto and pad (policy.h WEFT_POLICY_FIXED_BITS). */
export const POLICY_FIXED_BITS = 80;

/** tc return codes (linux/pkt_cls.h). */
export const TcAction = { ok: 0, shot: 2, redirect: 7 } as const;

/** Names of the maps (pinned at `<pinDir>/maps/<name>`). */
export const MapName = {
  ipcache: "weft_ipcache",
  /** The policy LPM trie (policy.h); replaced the hash map `weft_policy` (RETIRED_MAPS). */
  policy: "weft_policy_lpm",
  policyDefault: "weft_policy_default",
  /** Per identity pair, one value for all CPUs (counters.h); replaced the per-CPU `weft_counters` (RETIRED_MAPS). */
  counters: "weft_counters_v2",
  tunnels: "weft_tunnels",
  tunnelPeers: "weft_tunnel_peers",
  config: "weft_config",
  conntrack: "weft_conntrack",
  endpoints: "weft_endpoints",
} as const;
export type MapNameValue = (typeof MapName)[keyof typeof MapName];

/**
 * Maps earlier builds pinned that this one no longer declares, each with what replaced it (a tc
 * map here or an lb map of lb-layout.ts: they share the pin directory). An agent that finds one
 * fills the replacement, attaches the new programs (which use only the replacement), then unpins
 * the old map (TcDatapath.removeRetiredPins); the kernel frees it when the last old program holding
 * it is gone. The agent refills tables it owns; counters the programs wrote (`carryCounters`) are
 * copied, summed over CPUs, into the replacement when opening creates it (carryRetiredCounters).
 */
export const RETIRED_MAPS: readonly RetiredMap[] = [
  { name: "weft_policy", replacedBy: "weft_policy_lpm" },
  { name: "weft_counters", replacedBy: "weft_counters_v2", carryCounters: true },
  { name: "weft_lb_drops", replacedBy: "weft_lb_drops_v2", carryCounters: true },
];

export interface RetiredMap {
  name: string;
  replacedBy: string;
  /** A per-CPU map of u64 counters whose replacement has the same key and value layout with one value for all CPUs. */
  carryCounters?: boolean;
}

/**
 * The tc programs, one entry file and object each (bpf/progs/<name>.c -> bpf/dist/<name>.o),
 * pinned at `<pinDir>/progs/<name>`. Where each attaches:
 *   overlayIn     weft0 (WireGuard, L3) ingress
 *   toWorkload    a workload's host-side veth, egress (traffic into the workload)
 *   fromWorkload  a workload's host-side veth, ingress (traffic out of the workload)
 *   vxlanIn       the Weft VXLAN collect_md device, ingress
 *   overlayOut    weft0 egress: notes sent flows in conntrack so their replies pass (never drops)
 */
export const ProgramName = {
  overlayIn: "weft_overlay_in",
  overlayOut: "weft_overlay_out",
  toWorkload: "weft_to_workload",
  fromWorkload: "weft_from_workload",
  vxlanIn: "weft_vxlan_in",
} as const;
export type ProgramNameValue = (typeof ProgramName)[keyof typeof ProgramName];

/** Encodes/decodes one C struct; `size` is the struct's size in bytes. */
export interface Codec<T> {
  readonly size: number;
  encode(value: T): Buffer;
  decode(buf: Buffer, offset?: number): T;
}

/**
 * A zero-filled buffer for one encoded struct. Buffer.allocUnsafe slices Node's shared pool, so
 * this avoids an ArrayBuffer per map operation (the larger part of a single update's cost in JS);
 * fill(0) keeps padding zero as the kernel expects.
 */
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

function u8(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${name} must be a u8, got ${v}`);
  return v;
}
function u16(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${name} must be a u16, got ${v}`);
  return v;
}
function u32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a u32, got ${v}`);
  return v;
}

/** An ipcache key: an IPv4 prefix. Host bits are cleared so that 10.1.2.3/8 and 10.0.0.0/8 agree. */
export interface IpcacheKey {
  addr: string;
  prefixlen: number;
}

const L = layouts;

export const ipcacheKeyCodec: Codec<IpcacheKey> = {
  size: L.ipcacheKey.size,
  encode({ addr, prefixlen }) {
    if (!Number.isInteger(prefixlen) || prefixlen < 0 || prefixlen > 32) throw new RangeError(`prefixlen must be 0..32, got ${prefixlen}`);
    const buf = zeroed(L.ipcacheKey.size);
    buf.writeUInt32LE(prefixlen, L.ipcacheKey.fields.prefixlen.offset); // host order (x86-64, arm64: little endian)
    const a = ipv4Bytes(addr).readUInt32BE(0);
    const mask = prefixlen === 0 ? 0 : (0xffffffff << (32 - prefixlen)) >>> 0;
    buf.writeUInt32BE((a & mask) >>> 0, L.ipcacheKey.fields.addr.offset); // network order
    return buf;
  },
  decode(buf, offset = 0) {
    return {
      prefixlen: buf.readUInt32LE(offset + L.ipcacheKey.fields.prefixlen.offset),
      addr: ipv4String(buf, offset + L.ipcacheKey.fields.addr.offset),
    };
  },
};

export interface IpcacheValue {
  identity: number;
}

export const ipcacheValueCodec: Codec<IpcacheValue> = {
  size: L.ipcacheValue.size,
  encode({ identity }) {
    const buf = zeroed(L.ipcacheValue.size);
    buf.writeUInt32LE(u32("identity", identity), L.ipcacheValue.fields.identity.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    return { identity: buf.readUInt32LE(offset + L.ipcacheValue.fields.identity.offset) };
  },
};

/**
 * A policy key: the destination ports whose first `portBits` bits equal `port`'s (16: that one
 * port; 0: every port). `proto` 0 means any protocol (then `portBits` and `port` must be 0).
 */
export interface PolicyKey {
  srcId: number;
  dstId: number;
  proto: number;
  /** Destination port (prefix) in host terms (443); stored in network order as the C side reads it. */
  port: number;
  /** Port bits that must match, 0..16. */
  portBits: number;
}

/** The key of exactly one destination port. */
export function exactPortKey(srcId: number, dstId: number, proto: number, port: number): PolicyKey {
  return { srcId, dstId, proto, port, portBits: 16 };
}

/** The key of every port of `proto` (0: any protocol). */
export function anyPortKey(srcId: number, dstId: number, proto: number): PolicyKey {
  return { srcId, dstId, proto, port: 0, portBits: 0 };
}

export const policyKeyCodec: Codec<PolicyKey> = {
  size: L.policyKey.size,
  encode({ srcId, dstId, proto, port, portBits }) {
    if (!Number.isInteger(portBits) || portBits < 0 || portBits > 16) throw new RangeError(`portBits must be 0..16, got ${portBits}`);
    if (proto === 0 && (port !== 0 || portBits !== 0)) throw new RangeError(`proto 0 (any) covers every port: port and portBits must be 0, got ${port}/${portBits}`);
    const mask = portBits === 0 ? 0 : (0xffff << (16 - portBits)) & 0xffff;
    if ((u16("port", port) & ~mask) !== 0) throw new RangeError(`port ${port} has bits set past its ${portBits}-bit prefix`);
    const F = L.policyKey.fields;
    const buf = zeroed(L.policyKey.size);
    buf.writeUInt32LE(POLICY_FIXED_BITS + portBits, F.prefixlen.offset); // host order, like the ipcache's
    buf.writeUInt32LE(u32("srcId", srcId), F.src_id.offset);
    buf.writeUInt32LE(u32("dstId", dstId), F.dst_id.offset);
    buf.writeUInt8(u8("proto", proto), F.proto.offset);
    buf.writeUInt16BE(port, F.dport.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    const F = L.policyKey.fields;
    return {
      srcId: buf.readUInt32LE(offset + F.src_id.offset),
      dstId: buf.readUInt32LE(offset + F.dst_id.offset),
      proto: buf.readUInt8(offset + F.proto.offset),
      port: buf.readUInt16BE(offset + F.dport.offset),
      portBits: buf.readUInt32LE(offset + F.prefixlen.offset) - POLICY_FIXED_BITS,
    };
  },
};

export interface PolicyValue {
  verdict: VerdictName;
}

export const policyValueCodec: Codec<PolicyValue> = {
  size: L.policyValue.size,
  encode({ verdict }) {
    const code: number | undefined = Verdict[verdict];
    if (code === undefined || code === Verdict.none) throw new RangeError(`unknown verdict: ${String(verdict)}`);
    const buf = zeroed(L.policyValue.size);
    buf.writeUInt8(code, L.policyValue.fields.verdict.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    const code = buf.readUInt8(offset + L.policyValue.fields.verdict.offset);
    const name = (Object.keys(Verdict) as (keyof typeof Verdict)[]).find((k) => Verdict[k] === code);
    if (name === undefined || name === "none") throw new RangeError(`policy value holds unknown verdict code ${code}`);
    return { verdict: name };
  },
};

/** Destination identity key of weft_policy_default: a bare u32. */
export const identityKeyCodec: Codec<number> = {
  size: 4,
  encode(id) {
    const buf = zeroed(4);
    buf.writeUInt32LE(u32("identity", id), 0);
    return buf;
  },
  decode(buf, offset = 0) {
    return buf.readUInt32LE(offset);
  },
};

export interface PolicyDefaultValue {
  defaultDeny: boolean;
}

export const policyDefaultValueCodec: Codec<PolicyDefaultValue> = {
  size: L.policyDefaultValue.size,
  encode({ defaultDeny }) {
    const buf = zeroed(L.policyDefaultValue.size);
    buf.writeUInt8(defaultDeny ? PolicyDefaultFlag.defaultDeny : 0, L.policyDefaultValue.fields.flags.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    return { defaultDeny: (buf.readUInt8(offset + L.policyDefaultValue.fields.flags.offset) & PolicyDefaultFlag.defaultDeny) !== 0 };
  },
};

export interface CountersKey {
  srcId: number;
  dstId: number;
}

export const countersKeyCodec: Codec<CountersKey> = {
  size: L.countersKey.size,
  encode({ srcId, dstId }) {
    const buf = zeroed(L.countersKey.size);
    buf.writeUInt32LE(u32("srcId", srcId), L.countersKey.fields.src_id.offset);
    buf.writeUInt32LE(u32("dstId", dstId), L.countersKey.fields.dst_id.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    return {
      srcId: buf.readUInt32LE(offset + L.countersKey.fields.src_id.offset),
      dstId: buf.readUInt32LE(offset + L.countersKey.fields.dst_id.offset),
    };
  },
};

export interface CountersValue {
  /** Packets seen for the pair, passed or dropped. */
  packets: bigint;
  /** skb->len bytes of those packets. */
  bytes: bigint;
  /** Dropped packets by drop-reason code: drops[DropReason.policyDeny]; length COUNTERS_DROP_SLOTS, [0] is always 0. */
  drops: bigint[];
}

export const countersValueCodec: Codec<CountersValue> = {
  size: L.countersValue.size,
  encode({ packets, bytes, drops }) {
    const F = L.countersValue.fields;
    if (drops.length > COUNTERS_DROP_SLOTS) throw new RangeError(`drops has ${drops.length} slots, at most ${COUNTERS_DROP_SLOTS}`);
    const buf = zeroed(L.countersValue.size);
    buf.writeBigUInt64LE(packets, F.packets.offset);
    buf.writeBigUInt64LE(bytes, F.bytes.offset);
    drops.forEach((d, i) => buf.writeBigUInt64LE(d, F.drops.offset + 8 * i));
    return buf;
  },
  decode(buf, offset = 0) {
    const F = L.countersValue.fields;
    return {
      packets: buf.readBigUInt64LE(offset + F.packets.offset),
      bytes: buf.readBigUInt64LE(offset + F.bytes.offset),
      drops: Array.from({ length: COUNTERS_DROP_SLOTS }, (_, i) => buf.readBigUInt64LE(offset + F.drops.offset + 8 * i)),
    };
  },
};

/** All-zero counters. */
export function zeroCounters(): CountersValue {
  return { packets: 0n, bytes: 0n, drops: Array.from({ length: COUNTERS_DROP_SLOTS }, () => 0n) };
}


/** Dropped packets for one reason: dropCount(v, "policyDeny"). */
export function dropCount(v: CountersValue, reason: DropReasonName): bigint {
  return v.drops[DropReason[reason]] ?? 0n;
}

/** Dropped packets of any reason. */
export function totalDrops(v: CountersValue): bigint {
  return v.drops.reduce((a, b) => a + b, 0n);
}

/** A bare u32 key (weft_policy_default's destination identity, weft_config's index 0). */
export const u32KeyCodec: Codec<number> = identityKeyCodec;

/** An IPv4 address as a map key or field, in network byte order (weft_tunnel_peers' key). */
export const ipv4AddrCodec: Codec<string> = {
  size: 4,
  encode(addr) {
    return ipv4Bytes(addr);
  },
  decode(buf, offset = 0) {
    return ipv4String(buf, offset);
  },
};

/** A weft_tunnels key: a same-site peer's workload prefix (host bits cleared, like ipcache keys). */
export type TunnelKey = IpcacheKey;
export const tunnelKeyCodec: Codec<TunnelKey> = ipcacheKeyCodec;

export interface TunnelValue {
  /** The peer's underlay IPv4 address (the VXLAN outer destination). */
  remote: string;
}

export const tunnelValueCodec: Codec<TunnelValue> = {
  size: L.tunnelValue.size,
  encode({ remote }) {
    const buf = zeroed(L.tunnelValue.size);
    ipv4Bytes(remote).copy(buf, L.tunnelValue.fields.remote.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    return { remote: ipv4String(buf, offset + L.tunnelValue.fields.remote.offset) };
  },
};

/** A weft_tunnel_peers value: no settings yet (flags reserved, written 0). */
export type TunnelPeerValue = Record<never, never>;

export const tunnelPeerValueCodec: Codec<TunnelPeerValue> = {
  size: L.tunnelPeerValue.size,
  encode() {
    return zeroed(L.tunnelPeerValue.size);
  },
  decode() {
    return {};
  },
};

/** weft_endpoints value: the one source address a workload's veth may carry. */
export interface EndpointValue {
  addr: string;
  identity: number;
}

export const endpointValueCodec: Codec<EndpointValue> = {
  size: L.endpointValue.size,
  encode({ addr, identity }) {
    const buf = zeroed(L.endpointValue.size);
    ipv4Bytes(addr).copy(buf, L.endpointValue.fields.addr.offset);
    buf.writeUInt32LE(u32("identity", identity), L.endpointValue.fields.identity.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    return {
      addr: ipv4String(buf, offset + L.endpointValue.fields.addr.offset),
      identity: buf.readUInt32LE(offset + L.endpointValue.fields.identity.offset),
    };
  },
};

export interface ConfigValue {
  /** ifindex of this host's Weft VXLAN device; 0 = no VXLAN (everything takes WireGuard). */
  vxlanIfindex: number;
}

export const configValueCodec: Codec<ConfigValue> = {
  size: L.config.size,
  encode({ vxlanIfindex }) {
    const buf = zeroed(L.config.size);
    buf.writeUInt32LE(u32("vxlanIfindex", vxlanIfindex), L.config.fields.vxlan_ifindex.offset);
    return buf;
  },
  decode(buf, offset = 0) {
    return { vxlanIfindex: buf.readUInt32LE(offset + L.config.fields.vxlan_ifindex.offset) };
  },
};
