/**
 * `weft whois <address[:port]>`: who holds an overlay address — node, workload, SPIFFE ID,
 * identity number, site, cloud and labels — asked of this host's agent over its local API (root or
 * the weft group). For a connection's peer address, so an application can authorize by identity
 * without mTLS.
 */
import { join } from "node:path";
import type { WhoIs } from "@weft/protocol";
import { printJson, printLines } from "../output.js";

/** Tenant strings are printed without control characters (no terminal escapes from a label). */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

export function formatWhois(w: WhoIs): string {
  const lines: [string, string][] = [
    ["address", `${w.address}${w.port === undefined ? "" : `:${w.port}`}`],
    ["node", `${w.node.name} (${w.node.id}, ${w.node.overlayAddress})`],
    ...(w.workload ? ([["workload", w.workload]] as [string, string][]) : []),
    ["spiffe id", w.spiffeId ?? "-"],
    ["identity", w.identity === undefined ? "-" : String(w.identity)],
    ["site", w.site],
    ["cloud", w.cloud ?? "-"],
    ["labels", Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).sort().join(", ") || "-"],
  ];
  return `${lines.map(([k, v]) => `${`${k}:`.padEnd(11)}${printable(v)}`).join("\n")}\n`;
}

/** `weft whois <address[:port]>`, asked of this host's agent over its local API. */
export async function runWhois(address: string, o: { stateDir: string; socket?: string; json?: boolean }): Promise<void> {
  const { callLocalApi, LOCAL_API_SOCKET } = await import("@weft/agent/local");
  const w = await callLocalApi<WhoIs>(o.socket ?? join(o.stateDir, LOCAL_API_SOCKET), "GET", `/v1/whois?addr=${encodeURIComponent(address)}`);
  if (o.json) return printJson(w);
  printLines(formatWhois(w).replace(/\n$/, ""));
}
