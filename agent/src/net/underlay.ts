/**
 * Underlay discovery: the IPv4 address of the interface that carries the
 * default route, used as the private endpoint when none is configured.
 * Reads kernel state only (`ip -j`); sends nothing.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { CommandRunner } from "../exec/runner.js";

const run = promisify(execFile);

export async function defaultRouteAddress(): Promise<string | undefined> {
  const routes = JSON.parse((await run("ip", ["-j", "-4", "route", "show", "default"])).stdout || "[]") as { dev?: string }[];
  const dev = routes.find((r) => r.dev)?.dev;
  if (!dev) return undefined;
  const links = JSON.parse((await run("ip", ["-j", "-4", "addr", "show", "dev", dev])).stdout || "[]") as {
    addr_info?: { family?: string; local?: string; scope?: string }[];
  }[];
  return links.flatMap((l) => l.addr_info ?? []).find((a) => a.family === "inet" && a.scope === "global")?.local;
}

/**
 * The MTU of the device that carries the default route (the underlay a tunnel's packets leave
 * by), or undefined when there is no default route.
 */
export async function defaultRouteMtu(runner: CommandRunner): Promise<number | undefined> {
  const routes = JSON.parse((await runner.run(["ip", "-j", "-4", "route", "show", "default"])).stdout || "[]") as { dev?: string }[];
  const dev = routes.find((r) => r.dev)?.dev;
  if (!dev) return undefined;
  const links = JSON.parse((await runner.run(["ip", "-j", "link", "show", "dev", dev])).stdout || "[]") as { mtu?: number }[];
  const mtu = links[0]?.mtu;
  return typeof mtu === "number" && mtu > 0 ? mtu : undefined;
}

/**
 * WireGuard's MTU for an underlay MTU (pure): 80 bytes less (IPv6 outer header 40, UDP 8,
 * WireGuard 32: right for either family), never below 1200 (a smaller underlay cannot carry
 * IPv6 inside the tunnel's minimum); 1420 when the underlay is unknown.
 */
export function overlayMtuFor(underlayMtu: number | undefined): number {
  if (underlayMtu === undefined) return DEFAULT_OVERLAY_MTU;
  return Math.max(MIN_OVERLAY_MTU, Math.min(underlayMtu - WIREGUARD_OVERHEAD, 9000));
}

export const DEFAULT_OVERLAY_MTU = 1420;
const WIREGUARD_OVERHEAD = 80;
const MIN_OVERLAY_MTU = 1200;

/**
 * Destinations this host routes through any device but `overlayDevices` (main table, default
 * route left out): its own networks, which advertised site routes must never capture.
 */
export async function localRoutes(runner: CommandRunner, overlayDevices: readonly string[]): Promise<string[]> {
  const routes = JSON.parse((await runner.run(["ip", "-j", "-4", "route", "show", "table", "main"])).stdout || "[]") as { dst?: string; dev?: string }[];
  const out = new Set<string>();
  for (const r of routes) {
    if (!r.dst || r.dst === "default" || (r.dev !== undefined && overlayDevices.includes(r.dev))) continue;
    out.add(r.dst.includes("/") ? r.dst : `${r.dst}/32`);
  }
  return [...out].sort();
}
