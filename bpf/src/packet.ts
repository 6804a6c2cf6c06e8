/**
 * Crafted Ethernet/IPv4/TCP/UDP frames with correct lengths and checksums, for BPF_PROG_RUN.
 */

export interface PacketSpec {
  src: string;
  dst: string;
  proto: "tcp" | "udp";
  sport: number;
  dport: number;
  /** Payload bytes after the L4 header; default none. */
  payload?: Buffer;
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

/** An Ethernet II frame carrying IPv4 and TCP (SYN) or UDP. */
export function ipv4Frame(spec: PacketSpec): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const l4Len = (spec.proto === "tcp" ? 20 : 8) + payload.length;
  const l4 = Buffer.alloc(l4Len);
  l4.writeUInt16BE(spec.sport, 0);
  l4.writeUInt16BE(spec.dport, 2);
  if (spec.proto === "tcp") {
    l4.writeUInt32BE(1, 4); // seq
    l4.writeUInt8(5 << 4, 12); // data offset 5 words
    l4.writeUInt8(0x02, 13); // SYN
    l4.writeUInt16BE(65535, 14); // window
    payload.copy(l4, 20);
  } else {
    l4.writeUInt16BE(l4Len, 4);
    payload.copy(l4, 8);
  }
  const protoNum = spec.proto === "tcp" ? 6 : 17;
  const pseudo = Buffer.alloc(12);
  ipv4(spec.src).copy(pseudo, 0);
  ipv4(spec.dst).copy(pseudo, 4);
  pseudo.writeUInt8(protoNum, 9);
  pseudo.writeUInt16BE(l4Len, 10);
  const l4sum = checksum(pseudo, l4);
  l4.writeUInt16BE(spec.proto === "udp" && l4sum === 0 ? 0xffff : l4sum, spec.proto === "tcp" ? 16 : 6);

  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0); // version 4, ihl 5
  ip.writeUInt16BE(20 + l4Len, 2);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip.writeUInt8(64, 8); // ttl
  ip.writeUInt8(protoNum, 9);
  ipv4(spec.src).copy(ip, 12);
  ipv4(spec.dst).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);

  const eth = Buffer.alloc(ETH_HLEN);
  Buffer.from([0x02, 0, 0, 0, 0, 0x02]).copy(eth, 0); // dst mac (locally administered)
  Buffer.from([0x02, 0, 0, 0, 0, 0x01]).copy(eth, 6); // src mac
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ip, l4]);
}

/** The Internet checksum of a buffer (0 when a header's checksum field is right). */
export function internetChecksum(buf: Buffer): number {
  return checksum(buf);
}
