/**
 * IP address, prefix and endpoint canonicalisation, so desired and actual state compare
 * by value: `10.0.0.1` ≡ `10.0.0.1/32`, `10.0.0.5/24` ≡ `10.0.0.0/24` (as a route or allowed IP),
 * `FD00:0::1` ≡ `fd00::1`, `[fd00:0::1]:51820` ≡ `[fd00::1]:51820`. IPv6 text is RFC 5952.
 * Endpoints are split by the protocol's `parseEndpoint` (the one parser of `ip:port`).
 */
import { isIPv4, isIPv6 } from "node:net";
import { parseEndpoint } from "@weft/protocol";
import { InvalidDesiredStateError } from "./errors.js";

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/** Parses an IPv4 or IPv6 literal (no zone id); undefined if it is not one. */
export function parseIp(text: string): IpAddress | undefined {
  if (isIPv4(text)) {
    return { family: 4, bytes: Uint8Array.from(text.split(".").map(Number)) };
  }
  if (!isIPv6(text) || text.includes("%")) return undefined;
  return { family: 6, bytes: parseIpv6(text) };
}

function parseIpv6(text: string): Uint8Array {
  // isIPv6 has validated the syntax; expand "::" and an embedded dotted quad.
  let s = text.toLowerCase();
  const lastColon = s.lastIndexOf(":");
  const tail = s.slice(lastColon + 1);
  if (tail.includes(".")) {
    const q = tail.split(".").map(Number);
    const hi = (((q[0] ?? 0) << 8) | (q[1] ?? 0)).toString(16);
    const lo = (((q[2] ?? 0) << 8) | (q[3] ?? 0)).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const [left = "", right] = s.split("::");
  const leftGroups = left === "" ? [] : left.split(":");
  const rightGroups = right === undefined || right === "" ? [] : right.split(":");
  const zeros = right === undefined ? [] : Array<string>(8 - leftGroups.length - rightGroups.length).fill("0");
  const groups = [...leftGroups, ...zeros, ...rightGroups];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    bytes[i * 2] = v >> 8;
    bytes[i * 2 + 1] = v & 0xff;
  });
  return bytes;
}

/** Formats an address as `ip` and `wg` print it (dotted quad; RFC 5952 for IPv6). */
export function formatIp(addr: IpAddress): string {
  const b = addr.bytes;
  if (addr.family === 4) return Array.from(b).join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  // IPv4-mapped ::ffff:a.b.c.d, as inet_ntop prints it.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  // Longest run (>= 2) of zero groups, first one on a tie, becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export interface Prefix {
  addr: IpAddress;
  length: number;
}

/** Parses `ip[/len]`; a bare address gets the host length (/32 or /128). */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf("/");
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const addr = parseIp(ipText.trim());
  if (addr === undefined) return undefined;
  const max = addr.family === 4 ? 32 : 128;
  if (slash < 0) return { addr, length: max };
  const lenText = text.slice(slash + 1).trim();
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const length = Number(lenText);
  return length > max ? undefined : { addr, length };
}

function masked(p: Prefix): IpAddress {
  const bytes = Uint8Array.from(p.addr.bytes);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, p.length - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return { family: p.addr.family, bytes };
}

/**
 * Canonical network prefix (host bits cleared), as used for routes and allowed IPs:
 * `10.0.0.1` → `10.0.0.1/32`, `10.0.0.5/24` → `10.0.0.0/24`. Throws on invalid input.
 */
export function canonicalPrefix(text: string): string {
  const p = parsePrefix(text);
  if (p === undefined) throw new InvalidDesiredStateError(`invalid CIDR prefix: ${JSON.stringify(text)}`);
  return `${formatIp(masked(p))}/${p.length}`;
}

/**
 * Canonical interface address (host bits kept): `100.64.0.5/24` stays, `100.64.0.5` →
 * `100.64.0.5/32`, `FD00::0:1/64` → `fd00::1/64`. Throws on invalid input.
 */
export function canonicalAddress(text: string): string {
  const p = parsePrefix(text);
  if (p === undefined) throw new InvalidDesiredStateError(`invalid interface address: ${JSON.stringify(text)}`);
  return `${formatIp(p.addr)}/${p.length}`;
}

/** The address family of a prefix or address text; undefined if invalid. */
export function familyOf(text: string): IpFamily | undefined {
  return parsePrefix(text)?.addr.family;
}

/**
 * Canonical `ip:port` / `[ipv6]:port` endpoint. Anything else (e.g. a hostname) is returned
 * trimmed but otherwise unchanged.
 */
export function canonicalEndpoint(text: string): string {
  const s = text.trim();
  const e = parseEndpoint(s, { ipv6: true });
  const addr = e === undefined ? undefined : parseIp(e.host);
  if (e === undefined || addr === undefined) return s;
  const ip = formatIp(addr);
  return addr.family === 6 ? `[${ip}]:${e.port}` : `${ip}:${e.port}`;
}
