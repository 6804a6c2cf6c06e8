/**
 * The bpf filesystem the datapath pins into. Most distributions mount it at /sys/fs/bpf at boot
 * (systemd does); where nothing did, the agent mounts it there, as Cilium's agent does, so pins
 * outlive the agent. Only /sys/fs/bpf itself is ever mounted, and only when nothing is there yet.
 */
import { readFile } from "node:fs/promises";
import { DatapathError } from "../errors.js";
import type { CommandRunner } from "../exec/runner.js";

export const BPFFS_MOUNT_POINT = "/sys/fs/bpf";

/** Mount points of bpf filesystems visible to this process (from /proc/self/mountinfo). */
export async function bpffsMounts(): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .map((line) => {
      // "<id> <parent> <maj:min> <root> <mount point> <opts> ... - <fstype> <source> <super opts>"
      const [left, right] = line.split(" - ");
      const fstype = right?.split(" ")[0];
      return fstype === "bpf" ? left?.split(" ")[4] : undefined;
    })
    .filter((m): m is string => m !== undefined);
}

/** Mounts bpffs at /sys/fs/bpf when `pinDir` lies under it and no bpffs is mounted there. Returns true when it mounted. */
export async function ensureBpffs(pinDir: string, run: CommandRunner): Promise<boolean> {
  const mounts = await bpffsMounts();
  if (mounts.some((m) => pinDir === m || pinDir.startsWith(`${m}/`))) return false;
  if (!pinDir.startsWith(`${BPFFS_MOUNT_POINT}/`)) {
    throw new DatapathError(`the pin dir ${pinDir} is not on a bpf filesystem; mount one (mount -t bpf bpf <dir>) or use a pin dir under ${BPFFS_MOUNT_POINT}`);
  }
  try {
    await run.run(["mount", "-t", "bpf", "bpf", BPFFS_MOUNT_POINT]);
  } catch (err) {
    throw new DatapathError(`no bpf filesystem at ${BPFFS_MOUNT_POINT} and mounting one failed: ${(err as Error).message}`, { cause: err });
  }
  return true;
}
