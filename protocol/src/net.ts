/**
 * Address helpers shared by every package: IPv4 parsing, CIDR canonicalisation
 * and `ip:port` endpoints. Pure functions, no I/O.
 */
import { isIPv6 } from "node:net";

export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

export interface Ipv4Cidr {
  /** Network address (host bits cleared). */
  network: number;
  prefixLength: number;
}

export function parseCidr(text: string): Ipv4Cidr | undefined {
  const [addr, len, extra] = text.split("/");
  if (addr === undefined || len === undefined || extra !== undefined) return undefined;
  if (!/^(0|[1-9][0-9]?)$/.test(len)) return undefined;
  const prefixLength = Number(len);
  const ip = parseIpv4(addr);
  if (ip === undefined || prefixLength > 32) return undefined;
  const size = 2 ** (32 - prefixLength);
  return { network: ip - (ip % size), prefixLength };
}

export function formatCidr(cidr: Ipv4Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefixLength}`;
}

export function cidrSize(cidr: Ipv4Cidr): number {
  return 2 ** (32 - cidr.prefixLength);
}

export function cidrContains(cidr: Ipv4Cidr, ip: number): boolean {
  return ip >= cidr.network && ip < cidr.network + cidrSize(cidr);
}

export function cidrsOverlap(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  return a.network < b.network + cidrSize(b) && b.network < a.network + cidrSize(a);
}

/**
 * `10.0.0.1:51820` → {host, port}; undefined when malformed. The wire contract (records,
 * enrollment) is IPv4 only. With `{ ipv6: true }` it also takes `[fd00::1]:51820` (host without
 * the brackets, no zone id), for callers that handle both families (the agent's WireGuard wrapper).
 */
export function parseEndpoint(text: string, options: { ipv6?: boolean } = {}): { host: string; port: number } | undefined {
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})$/.exec(text);
  const match = v6 ?? /^([0-9.]+):([0-9]{1,5})$/.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  const valid = v6 ? options.ipv6 === true && isIPv6(match[1]) : parseIpv4(match[1]) !== undefined;
  return valid ? { host: match[1], port } : undefined;
}

/** IPv4 ranges that are not a host's unicast address on a network, with what they are. */
const NOT_UNICAST: readonly { cidr: Ipv4Cidr; what: string }[] = [
  ["0.0.0.0/8", "'this network' (unspecified)"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved or broadcast"],
].map(([c, what]) => ({ cidr: parseCidr(c!)!, what: what! }));

/**
 * Why an IPv4 address cannot be a peer's endpoint (loopback, link-local, multicast, broadcast,
 * unspecified, reserved), or undefined when it is a unicast address another host can send to.
 */
export function nonUnicastReason(ip: string): string | undefined {
  const v = parseIpv4(ip);
  if (v === undefined) return "not an IPv4 address";
  return NOT_UNICAST.find((r) => cidrContains(r.cidr, v))?.what;
}

/**
 * Address space a site route may cover without an explicit allowance: RFC 1918 private ranges and
 * the shared CGNAT range (RFC 6598). (IPv6 ULA, fc00::/7, is the IPv6 counterpart; site routes are
 * IPv4 only today.) Anything else is someone's public address space.
 */
export const PRIVATE_RANGES: readonly string[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"];

/** Whether every address of `inner` is in `outer`. */
export function cidrWithin(inner: Ipv4Cidr, outer: Ipv4Cidr): boolean {
  return inner.prefixLength >= outer.prefixLength && cidrContains(outer, inner.network);
}

/** Whether `cidr` lies wholly inside PRIVATE_RANGES. */
export function isPrivateCidr(cidr: Ipv4Cidr): boolean {
  return PRIVATE_RANGES.some((r) => cidrWithin(cidr, parseCidr(r)!));
}
