/**
 * The backup on disk, in one of two layouts holding the same thing:
 *
 * - a directory (an existing directory, or a path ending in `/`): `manifest.json`, one
 *   `streams/<stream>.snapshot` per bucket (JetStream's snapshot archive) and `state/<path>` per
 *   controller state file;
 * - one file (any other path): the manifest with every snapshot and file inline (base64).
 *
 * Everything is written with mode 0600 (directories 0700): the backup holds the authority's seeds
 * and the CAs' keys. Reading checks every digest and every path before anything is used.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { BackupError } from "./errors.js";
import { checkStatePath, type StateFile } from "./files.js";
import type { StreamSnapshot } from "./snapshot.js";

export const BACKUP_FORMAT = "weft-controller-backup";
export const BACKUP_VERSION = 1;
const MANIFEST = "manifest.json";

export interface Backup {
  createdAt: string;
  streams: StreamSnapshot[];
  files: StateFile[];
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const STREAM_NAME = /^[A-Za-z0-9_-]{1,128}$/;

const Manifest = z.object({
  format: z.literal(BACKUP_FORMAT),
  version: z.literal(BACKUP_VERSION),
  createdAt: z.string().max(64),
  streams: z
    .array(
      z.object({
        stream: z.string().regex(STREAM_NAME),
        config: z.record(z.string(), z.unknown()),
        state: z.looseObject({ messages: z.number().int().min(0), first_seq: z.number().int().min(0), last_seq: z.number().int().min(0) }),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        data: z.string().optional(),
      }),
    )
    .max(256),
  files: z.array(z.object({ path: z.string().max(200), sha256: z.string().regex(/^[0-9a-f]{64}$/), data: z.string().optional() })).max(256),
});
type Manifest = z.infer<typeof Manifest>;

/** Whether `path` names a directory backup (an existing directory, or a path ending in `/`). */
export async function isDirectoryTarget(path: string): Promise<boolean> {
  if (path.endsWith("/")) return true;
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** Writes the backup to `path` (refusing to overwrite an earlier one). Returns the layout used. */
export async function writeBackup(path: string, backup: Backup): Promise<"directory" | "file"> {
  const inline = !(await isDirectoryTarget(path));
  const manifest: Manifest = {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    createdAt: backup.createdAt,
    streams: backup.streams.map((s) => ({ stream: s.stream, config: s.config, state: s.state, sha256: sha256(s.data), ...(inline ? { data: s.data.toString("base64") } : {}) })),
    files: backup.files.map((f) => ({ path: f.path, sha256: sha256(f.data), ...(inline ? { data: f.data.toString("base64") } : {}) })),
  };
  const body = JSON.stringify(manifest, null, inline ? 0 : 2) + "\n";
  try {
    if (inline) {
      await writeFile(path, body, { mode: 0o600, flag: "wx" });
      return "file";
    }
    await mkdir(join(path, "streams"), { recursive: true, mode: 0o700 });
    await mkdir(join(path, "state"), { recursive: true, mode: 0o700 });
    for (const s of backup.streams) await writeFile(join(path, "streams", `${s.stream}.snapshot`), s.data, { mode: 0o600, flag: "wx" });
    for (const f of backup.files) {
      const rel = checkStatePath(f.path);
      await mkdir(join(path, "state", rel, ".."), { recursive: true, mode: 0o700 });
      await writeFile(join(path, "state", rel), f.data, { mode: 0o600, flag: "wx" });
    }
    await writeFile(join(path, MANIFEST), body, { mode: 0o600, flag: "wx" });
    return "directory";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new BackupError(`${path} already holds a backup: choose a new path`, { cause: err });
    throw new BackupError(`cannot write the backup to ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads and checks a backup written by writeBackup (either layout). */
export async function readBackup(path: string): Promise<Backup> {
  const dir = await isDirectoryTarget(path);
  let manifest: Manifest;
  try {
    const text = await readFile(dir ? join(path, MANIFEST) : path, "utf8");
    const parsed = Manifest.safeParse(JSON.parse(text));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new BackupError(`${path} is not a Weft controller backup (version ${BACKUP_VERSION}): ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`.trim());
    }
    manifest = parsed.data;
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`cannot read the backup ${path}: ${(err as Error).message}`, { cause: err });
  }
  const load = async (inline: string | undefined, file: string, digest: string, what: string) => {
    const data = inline !== undefined ? Buffer.from(inline, "base64") : dir ? await readFile(join(path, file)).catch((cause: unknown) => Promise.reject(new BackupError(`${what}: cannot read ${file}`, { cause }))) : undefined;
    if (!data) throw new BackupError(`${what}: the backup holds no data for it`);
    if (sha256(data) !== digest) throw new BackupError(`${what}: its contents do not match the manifest's digest (a damaged backup); refusing to restore it`);
    return data;
  };
  const streams: StreamSnapshot[] = [];
  for (const s of manifest.streams) {
    streams.push({ stream: s.stream, config: s.config, state: s.state, data: await load(s.data, join("streams", `${s.stream}.snapshot`), s.sha256, `stream ${s.stream}`) });
  }
  const files: StateFile[] = [];
  for (const f of manifest.files) {
    const rel = checkStatePath(f.path);
    files.push({ path: f.path, data: await load(f.data, join("state", rel), f.sha256, `state file ${f.path}`) });
  }
  return { createdAt: manifest.createdAt, streams, files };
}
