/**
 * `labStatus`: one line per host — where it is, its underlay addresses, whether its namespace and
 * interface are up, and the overlay address its agent reported in `<hostDir>/agent/state.json`.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { readLinks } from "./observe.js";
import { resolveLabOptions, type LabOptions } from "./options.js";
import { mapLimit } from "./run.js";
import { hostDir } from "./state.js";
import { labTopology, type Host, type SiteName } from "./topology.js";

export interface HostStatus {
  name: string;
  site: SiteName;
  netns: string;
  underlay: { private: string; public: string | null };
  /** The agent's overlay address, or null when it has not reported one. */
  overlay: string | null;
  /** The namespace exists and the host's interface is up with its private address. */
  up: boolean;
}

/** Path of the agent's state file for a host: `<hostDir>/agent/state.json`. */
export function agentStatePath(opts: LabOptions, name: string): string {
  return join(hostDir(opts, name), "agent", "state.json");
}

/** Status of every lab host. Reading needs no root if the lab is down; up needs `ip`. */
export async function labStatus(options: LabOptions = {}): Promise<HostStatus[]> {
  const opts = resolveLabOptions(options);
  const topology = labTopology(opts);
  return mapLimit(topology.hosts, 7, async (h) => ({
    name: h.name,
    site: h.site,
    netns: h.netns,
    underlay: { private: h.privateAddress, public: h.publicAddress ?? null },
    overlay: await readOverlayAddress(agentStatePath(opts, h.name)),
    up: await hostIsUp(h),
  }));
}

/**
 * Reads the top-level string `overlayAddress` from an agent state file. Defensive: a missing,
 * unreadable or garbled file, or a missing/non-string field, gives null.
 */
export async function readOverlayAddress(path: string): Promise<string | null> {
  try {
    const parsed: unknown = JSON.parse(await readFile(path, "utf8"));
    if (typeof parsed !== "object" || parsed === null) return null;
    const value = (parsed as Record<string, unknown>).overlayAddress;
    return typeof value === "string" && value.length > 0 ? value : null;
  } catch {
    return null;
  }
}

async function hostIsUp(h: Host): Promise<boolean> {
  if (!existsSync(`/run/netns/${h.netns}`)) return false;
  try {
    const link = (await readLinks(h.netns)).find((l) => l.name === h.interface);
    return !!link && link.up && link.lowerUp && link.addresses.includes(`${h.privateAddress}/${h.prefixLength}`);
  } catch {
    return false;
  }
}
