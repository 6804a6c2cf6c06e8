/**
 * Workloads' resolv.conf: `/etc/netns/<netns>/resolv.conf`, which `ip netns exec` bind-mounts
 * over /etc/resolv.conf for whatever runs in the workload's namespace (a container runtime would
 * be given the same file). Written only when it would change; removed with the workload (only
 * files this agent wrote, recognised by their first line).
 */
import { mkdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export const NETNS_ETC = "/etc/netns";
const MARK = "# written by the weft agent";

export function resolvConfPath(netns: string, root = NETNS_ETC): string {
  return join(root, netns, "resolv.conf");
}

/** Writes `content` when it differs; returns whether it wrote. */
export async function writeResolvConf(netns: string, content: string, root = NETNS_ETC): Promise<boolean> {
  const path = resolvConfPath(netns, root);
  const now = await readFile(path, "utf8").catch(() => undefined);
  if (now === content) return false;
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFile(path, content, { mode: 0o644 });
  return true;
}

/** Removes a resolv.conf this agent wrote (and the directory when empty); false when none. */
export async function removeResolvConf(netns: string, root = NETNS_ETC): Promise<boolean> {
  const path = resolvConfPath(netns, root);
  const now = await readFile(path, "utf8").catch(() => undefined);
  if (now === undefined || !now.startsWith(MARK)) return false;
  await rm(path, { force: true });
  await rmdir(dirname(path)).catch(() => undefined);
  return true;
}
