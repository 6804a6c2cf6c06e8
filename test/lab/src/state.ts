/**
 * What the lab has created, recorded in `<runDir>/<prefix>.json` (default
 * `/run/weft-lab/weft.json`, on tmpfs like the namespaces themselves), plus the per-host
 * directories under `<stateRoot>/<prefix>/hosts/<name>/`. `labDown` removes exactly what is
 * recorded here. Records are written before the thing they name is created (write-ahead), so a
 * crash never leaves something the lab made but does not know about.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { LabStateError } from "./errors.js";
import { resolveHost } from "./hosts.js";
import { resolveLabOptions, type LabOptions, type ResolvedLabOptions } from "./options.js";
import { labTopology } from "./topology.js";

const LabStateSchema = z.object({
  version: z.literal(1),
  prefix: z.string(),
  /** Namespaces the lab created (or is about to create). */
  namespaces: z.array(z.string()),
  /** Directories the lab created and removes on down (the `<stateRoot>/<prefix>` tree). */
  directories: z.array(z.string()),
});

export type LabState = z.infer<typeof LabStateSchema>;

/** Path of the state file for these options. */
export function statePath(opts: LabOptions | ResolvedLabOptions = {}): string {
  const o = resolveLabOptions(opts);
  return join(o.runDir, `${o.prefix}.json`);
}

/** `<stateRoot>/<prefix>`: the root of every per-host directory. */
export function labDir(opts: LabOptions | ResolvedLabOptions = {}): string {
  const o = resolveLabOptions(opts);
  return join(o.stateRoot, o.prefix);
}

/**
 * Where the agent on lab host `name` pins its BPF programs and maps: `/sys/fs/bpf/weft-lab/<prefix>/<name>`.
 * All lab hosts share the machine's bpffs; the prefix and host name keep them apart, and labDown
 * removes `/sys/fs/bpf/weft-lab/<prefix>` (never the real `/sys/fs/bpf/weft` of a host agent).
 */
export function hostPinDir(opts: LabOptions | ResolvedLabOptions, name: string): string {
  return join(labPinRoot(opts), name);
}

export function labPinRoot(opts: LabOptions | ResolvedLabOptions = {}): string {
  return join("/sys/fs/bpf/weft-lab", resolveLabOptions(opts).prefix);
}

/**
 * The per-host directory `<stateRoot>/<prefix>/hosts/<name>/` (no trailing slash). The agent
 * running on that host keeps its state in `<hostDir>/agent/`. `name` is a lab host (`aws-1`,
 * `onprem-1`) or `ctl`; anything else throws UnknownHostError.
 */
export function hostDir(opts: LabOptions | ResolvedLabOptions, name: string): string {
  const o = resolveLabOptions(opts);
  const node = resolveHost(labTopology(o), name);
  return join(labDir(o), "hosts", node.name);
}

/** Reads the state file; undefined when there is none. Throws LabStateError if unreadable. */
export async function readLabState(opts: LabOptions | ResolvedLabOptions): Promise<LabState | undefined> {
  const path = statePath(opts);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new LabStateError(path, { cause: err });
  }
  try {
    return LabStateSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new LabStateError(path, { cause: err });
  }
}

/** Writes the state file atomically (temp file + rename). */
export async function writeLabState(opts: LabOptions | ResolvedLabOptions, state: LabState): Promise<void> {
  const path = statePath(opts);
  await mkdir(resolveLabOptions(opts).runDir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + "\n", { mode: 0o644 });
  await rename(tmp, path);
}

/** Removes the state file (no error if absent). */
export async function removeLabState(opts: LabOptions | ResolvedLabOptions): Promise<void> {
  await rm(statePath(opts), { force: true });
}
