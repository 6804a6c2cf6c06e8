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
