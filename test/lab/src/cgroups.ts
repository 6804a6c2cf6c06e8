/**
 * One cgroup v2 directory per lab host, `<cgroup2>/weft-lab/<prefix>/<host>`: every process the
 * lab starts "in" a host or one of its workloads (labExec, spawnInHost) joins its host's cgroup
 * before it execs, and the host's agent attaches its socket programs (service load balancing)
 * there (`--service-cgroup`). All lab hosts share this machine's kernel, so attaching to the root
 * cgroup would reach every process of the machine and every other lab: the per-host cgroup keeps
 * a host's programs on that host's processes. labDown removes the directories (after the lab's
 * processes are stopped; a process still inside one is killed first).
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { resolveLabOptions, type LabOptions, type ResolvedLabOptions } from "./options.js";

/** Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid host); undefined when it is not. */
export function cgroup2Mount(mounts = safeRead("/proc/self/mounts")): string | undefined {
  for (const line of mounts.split("\n")) {
    const f = line.split(" ");
    if (f[2] === "cgroup2" && f[1]) return f[1];
  }
  return undefined;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** `<cgroup2>/weft-lab/<prefix>`; undefined without cgroup v2. */
export function labCgroupRoot(opts: LabOptions | ResolvedLabOptions = {}): string | undefined {
  const mount = cgroup2Mount();
  return mount === undefined ? undefined : join(mount, "weft-lab", resolveLabOptions(opts).prefix);
}

/** The cgroup of lab host `host` (a host's workloads share it); undefined without cgroup v2. */
export function hostCgroup(opts: LabOptions | ResolvedLabOptions, host: string): string | undefined {
  const root = labCgroupRoot(opts);
  return root === undefined ? undefined : join(root, host);
}

/** Creates the hosts' cgroups (mkdir -p); returns those it made. */
export async function ensureHostCgroups(opts: LabOptions | ResolvedLabOptions, hosts: readonly string[]): Promise<string[]> {
  const made: string[] = [];
  for (const h of hosts) {
    const dir = hostCgroup(opts, h);
    if (dir === undefined || existsSync(dir)) continue;
    await mkdir(dir, { recursive: true });
    made.push(dir);
  }
  return made;
}

/**
 * Removes `<cgroup2>/weft-lab/<prefix>` and its host cgroups (and `weft-lab` when no other lab
 * uses it). A process still in one is SIGKILLed first: a cgroup with members cannot be removed.
 */
export async function removeLabCgroups(opts: LabOptions | ResolvedLabOptions = {}): Promise<string[]> {
  const root = labCgroupRoot(opts);
  if (root === undefined || !existsSync(root)) return [];
  const removed: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(root, entry.name);
    for (let attempt = 0; attempt < 40; attempt++) {
      const pids = (await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => ""))
        .split("\n")
        .map(Number)
        .filter((n) => Number.isInteger(n) && n > 0);
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      try {
        await rmdir(dir);
        removed.push(dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") break;
        await sleep(50);
      }
    }
  }
  await rmdir(root).catch(() => undefined);
  await rmdir(join(root, "..")).catch(() => undefined);
  return removed;
}

/**
 * argv that first moves itself into `cgroup` (writing its pid to cgroup.procs) and then execs
 * `argv`, so the command and everything it starts are in the cgroup from their first instruction.
 * `sh -c` with a fixed script; the cgroup path and argv are positional parameters, never parsed.
 */
export function inCgroup(cgroup: string, argv: readonly string[]): string[] {
  return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', join(cgroup, "cgroup.procs"), ...argv];
}
