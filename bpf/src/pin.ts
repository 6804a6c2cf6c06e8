/**
 * Pin directories on a bpf filesystem: `<pinDir>/maps/<map name>` and `<pinDir>/progs/<program
 * name>`. Maps pinned there outlive the agent, so enforcement and counters survive a restart.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, statfsSync, unlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { BpfError, BpfFsError } from "./errors.js";
import { libbpf } from "./libbpf.js";

/** statfs f_type of a bpf filesystem (linux/magic.h BPF_FS_MAGIC). */
export const BPF_FS_MAGIC = 0xcafe4a11;

/** The default pin directory (DESIGN.md: all maps pinned under /sys/fs/bpf/weft). */
export const DEFAULT_PIN_DIR = "/sys/fs/bpf/weft";

export interface PinLayout {
  dir: string;
  maps: string;
  progs: string;
}

export function pinLayout(pinDir: string): PinLayout {
  const dir = resolve(pinDir);
  return { dir, maps: join(dir, "maps"), progs: join(dir, "progs") };
}

/** Whether `path` (an existing path) is on a bpf filesystem. */
export function isBpffs(path: string): boolean {
  return statfsSync(path).type === BPF_FS_MAGIC;
}

/**
 * mkdir -p of `<pinDir>`, `maps/` and `progs/`, after checking that the nearest existing
 * directory is on bpffs (BpfFsError otherwise: "/sys/fs/bpf is not a bpf filesystem: mount -t bpf bpf /sys/fs/bpf").
 */
export function ensurePinDir(pinDir: string): PinLayout {
  const layout = pinLayout(pinDir);
  let existing = layout.dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const type = statfsSync(existing).type;
  if (type !== BPF_FS_MAGIC) throw new BpfFsError(existing, type);
  mkdirSync(layout.maps, { recursive: true });
  mkdirSync(layout.progs, { recursive: true });
  return layout;
}

/** Pins an object fd at `path`, replacing what is pinned there in one step (pin aside, then rename over). */
export function pinReplace(fd: number, path: string, what: string): void {
  const tmp = `${path}__replacing_${process.pid}`; // bpffs names may not contain "."
  if (existsSync(tmp)) unlinkSync(tmp);
  const rc = libbpf().bpf_obj_pin(fd, tmp) as number;
  if (rc < 0) throw new BpfError(`bpf_obj_pin ${what} ${tmp}`, -rc);
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
}

/**
 * Removes every pin under `<pinDir>/maps` and `<pinDir>/progs`, then those directories and
 * `pinDir` itself when empty. Maps and programs still attached or open stay alive until released.
 * A pinDir that does not exist is fine (lab teardown calls this unconditionally).
 */
export function removePins(pinDir: string): void {
  const layout = pinLayout(pinDir);
  for (const sub of [layout.maps, layout.progs]) {
    if (!existsSync(sub)) continue;
    for (const name of readdirSync(sub)) unlinkSync(join(sub, name));
    rmdirSync(sub);
  }
  if (existsSync(layout.dir) && readdirSync(layout.dir).length === 0) rmdirSync(layout.dir);
}

/** Same as removePins. */
export const unpinAll = removePins;
