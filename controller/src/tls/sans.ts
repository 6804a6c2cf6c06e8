/**
 * Which names the API's server certificate must carry, and the https URLs
 * handed out for it. Pure functions; the host's addresses are passed in.
 */
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";

/** Every non-loopback IPv4 address of this host, right now. */
export function hostIpv4Addresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((addrs) => addrs ?? [])
    .filter((a) => a.family === "IPv4" && !a.internal)
    .map((a) => a.address);
}

const ANY_ADDRESS = new Set(["", "0.0.0.0", "::", "[::]"]);
const LOOPBACK = ["localhost", "127.0.0.1"];

/**
 * The SANs the server certificate needs: the listen host when it is a specific
 * address or name, then `configured` (default: the host's non-loopback IPv4
 * addresses), then localhost and 127.0.0.1 for local tools. Normalised, no duplicates.
 */
export function requiredSans(opts: { listenHost: string; configured: string[] | undefined; hostAddresses: string[] }): string[] {
  const listen = ANY_ADDRESS.has(opts.listenHost) ? [] : [opts.listenHost];
  return [...new Set([...listen, ...(opts.configured ?? opts.hostAddresses), ...LOOPBACK].map(normalizeSan))];
}

/** Lower-case names; IPv6 addresses in their canonical compressed form. */
export function normalizeSan(san: string): string {
  const bare = san.trim().replace(/^\[|\]$/g, "");
  if (isIP(bare) === 6) return new URL(`http://[${bare}]`).hostname.replace(/^\[|\]$/g, "");
  return bare.toLowerCase();
}

/** True when `a` and `b` name the same set of SANs. */
export function sameSans(a: string[], b: string[]): boolean {
  const x = new Set(a.map(normalizeSan));
  const y = new Set(b.map(normalizeSan));
  return x.size === y.size && [...x].every((s) => y.has(s));
}

/**
 * https URLs of the API for agents, best first: the host the admin reached us by
 * when the certificate covers it and it is not loopback, then the specific listen
 * host, or else every non-loopback SAN (IP addresses first). Loopback only as a last resort.
 */
export function apiUrls(opts: { sans: string[]; listenHost: string; port: number; requestHost?: string | undefined }): string[] {
  const isLoopback = (h: string) => h === "localhost" || h === "::1" || h.startsWith("127.");
  const sans = opts.sans.map(normalizeSan);
  const wildcard = (h: string) => h.startsWith("*.");
  const preferred = opts.requestHost === undefined ? undefined : normalizeSan(opts.requestHost);
  const hosts: string[] = [];
  if (preferred && !isLoopback(preferred) && sans.includes(preferred)) hosts.push(preferred);
  if (!ANY_ADDRESS.has(opts.listenHost)) hosts.push(normalizeSan(opts.listenHost));
  else hosts.push(...sans.filter((h) => !isLoopback(h) && !wildcard(h)).sort((a, b) => Number(isIP(b) !== 0) - Number(isIP(a) !== 0)));
  if (hosts.length === 0) hosts.push("127.0.0.1");
  return [...new Set(hosts)].map((h) => `https://${isIP(h) === 6 ? `[${h}]` : h}:${opts.port}`);
}
