/**
 * Crafted Ethernet/IPv4/TCP/UDP/ICMP frames with correct lengths and checksums, for BPF_PROG_RUN.
 */

export interface PacketSpec {
  src: string;
  dst: string;
  proto: "tcp" | "udp" | "icmp";
  /** Ports for tcp/udp (ignored for icmp). */
  sport?: number;
  dport?: number;
  /** TCP flags byte (default 0x02, SYN; 0x10 is ACK, 0x12 SYN-ACK). */
  tcpFlags?: number;
  /** ICMP type (default 8, echo request; 0 is echo reply) and echo id (default 1). */
  icmpType?: number;
  icmpId?: number;
  /** Payload bytes after the L4 header; default none. */
  payload?: Buffer;
  /** IPv4 options (a multiple of 4 bytes, at most 40): the L4 header moves back by as much. */
  ipOptions?: Buffer;
  /** Ethernet addresses (aa:bb:cc:dd:ee:ff); defaults 02:00:00:00:00:02 (dst) and 02:00:00:00:00:01 (src). */
  dstMac?: string;
  srcMac?: string;
}

const ETH_HLEN = 14;

function ipv4(addr: string): Buffer {
  return Buffer.from(addr.split(".").map(Number));
}

function checksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const buf of parts) {
    for (let i = 0; i < buf.length; i += 2) sum += ((buf[i] ?? 0) << 8) + (buf[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4 packet (no link-layer header), as an L3 device such as weft0 carries it. */
export function ipv4Packet(spec: PacketSpec): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const protoNum = { tcp: 6, udp: 17, icmp: 1 }[spec.proto];
  const l4HdrLen = { tcp: 20, udp: 8, icmp: 8 }[spec.proto];
  const l4Len = l4HdrLen + payload.length;
  const l4 = Buffer.alloc(l4Len);
  payload.copy(l4, l4HdrLen);
  if (spec.proto === "icmp") {
    l4.writeUInt8(spec.icmpType ?? 8, 0); // echo request unless told
    l4.writeUInt16BE(spec.icmpId ?? 1, 4); // id
    l4.writeUInt16BE(1, 6); // seq
    l4.writeUInt16BE(checksum(l4), 2);
  } else {
    l4.writeUInt16BE(spec.sport ?? 0, 0);
    l4.writeUInt16BE(spec.dport ?? 0, 2);
    if (spec.proto === "tcp") {
      l4.writeUInt32BE(1, 4); // seq
      l4.writeUInt8(5 << 4, 12); // data offset 5 words
      l4.writeUInt8(spec.tcpFlags ?? 0x02, 13); // SYN unless told
      l4.writeUInt16BE(65535, 14); // window
    } else {
      l4.writeUInt16BE(l4Len, 4);
    }
    const pseudo = Buffer.alloc(12);
    ipv4(spec.src).copy(pseudo, 0);
    ipv4(spec.dst).copy(pseudo, 4);
    pseudo.writeUInt8(protoNum, 9);
    pseudo.writeUInt16BE(l4Len, 10);
    const l4sum = checksum(pseudo, l4);
    l4.writeUInt16BE(spec.proto === "udp" && l4sum === 0 ? 0xffff : l4sum, spec.proto === "tcp" ? 16 : 6);
  }

  const options = spec.ipOptions ?? Buffer.alloc(0);
  if (options.length % 4 !== 0 || options.length > 40) throw new RangeError(`IPv4 options must be a multiple of 4 bytes up to 40, got ${options.length}`);
  const ihl = 20 + options.length;
  const ip = Buffer.alloc(ihl);
  ip.writeUInt8(0x40 | (ihl / 4), 0); // version 4, ihl
  ip.writeUInt16BE(ihl + l4Len, 2);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip.writeUInt8(64, 8); // ttl
  ip.writeUInt8(protoNum, 9);
  ipv4(spec.src).copy(ip, 12);
  ipv4(spec.dst).copy(ip, 16);
  options.copy(ip, 20);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([ip, l4]);
}

function mac(addr: string): Buffer {
  const bytes = addr.split(":").map((h) => (/^[0-9a-f]{2}$/i.test(h) ? parseInt(h, 16) : NaN));
  if (bytes.length !== 6 || bytes.some(Number.isNaN)) throw new RangeError(`not a MAC address: ${addr}`);
  return Buffer.from(bytes);
}

/** An Ethernet II frame carrying IPv4 and TCP (SYN), UDP or ICMP (echo request). */
export function ipv4Frame(spec: PacketSpec): Buffer {
  const eth = Buffer.alloc(ETH_HLEN);
  mac(spec.dstMac ?? "02:00:00:00:00:02").copy(eth, 0);
  mac(spec.srcMac ?? "02:00:00:00:00:01").copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ipv4Packet(spec)]);
}

/** The MAC address at `offset` of a frame (aa:bb:cc:dd:ee:ff). */
export function macAt(frame: Buffer, offset: number): string {
  return [...frame.subarray(offset, offset + 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** The Internet checksum of a buffer (0 when a header's checksum field is right). */
export function internetChecksum(buf: Buffer): number {
  return checksum(buf);
}
