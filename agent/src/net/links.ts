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

/** ifindex of an interface in this namespace (through netlink: /sys may belong to another namespace). */
export async function ifindexOf(run: CommandRunner, name: string): Promise<number> {
  const { stdout } = await run.run(["ip", "-json", "link", "show", "dev", name]);
  const parsed = JSON.parse(stdout) as { ifindex?: unknown }[];
  const index = parsed[0]?.ifindex;
  if (typeof index !== "number") throw new AgentError(`cannot read the ifindex of ${name} from ip -json link show`);
  return index;
}
