/**
 * Underlay discovery: the IPv4 address of the interface that carries the
 * default route, used as the private endpoint when none is configured.
 * Reads kernel state only (`ip -j`); sends nothing.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

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
