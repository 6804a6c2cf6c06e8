/**
 * Interface facts read through netlink (`ip -json`), never /sys: an agent that only entered a
 * network namespace (nsenter --net) still sees the host's /sys/class/net.
 */
import { AgentError } from "../errors.js";
import type { CommandRunner } from "../exec/runner.js";

export async function linkExists(run: CommandRunner, name: string): Promise<boolean> {
  try {
    await run.run(["ip", "link", "show", "dev", name]);
    return true;
  } catch {
    return false;
  }
}

/** What one `ip -json link show` says of an interface. */
export interface DeviceState {
  ifindex: number;
  /** Administratively up (`ip link set … up`). */
  up: boolean;
}

/** ifindex of an interface in this namespace (through netlink: /sys may belong to another namespace). */
export async function ifindexOf(run: CommandRunner, name: string): Promise<number> {
  const { stdout } = await run.run(["ip", "-json", "link", "show", "dev", name]);
  return parseLinkState(stdout, name).ifindex;
}

/** An interface's ifindex and whether it is up, or undefined when there is none: one command. */
export async function linkState(run: CommandRunner, name: string): Promise<DeviceState | undefined> {
  let stdout: string;
  try {
    ({ stdout } = await run.run(["ip", "-json", "link", "show", "dev", name]));
  } catch {
    return undefined;
  }
  return parseLinkState(stdout, name);
}

/** `ip -json link show dev NAME`'s output as a DeviceState (pure). */
export function parseLinkState(stdout: string, name: string): DeviceState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    parsed = undefined;
  }
  const link = Array.isArray(parsed) ? (parsed[0] as { ifindex?: unknown; flags?: unknown } | undefined) : undefined;
  if (typeof link?.ifindex !== "number") throw new AgentError(`cannot read the ifindex of ${name} from ip -json link show`);
  return { ifindex: link.ifindex, up: Array.isArray(link.flags) && link.flags.includes("UP") };
}
