/**
 * The files of a controller's state directory a restore needs, beside the buckets, for agents to
 * come back without enrolling again: the NATS authority (operator, accounts and signing key their
 * credentials chain to, and the revocation list), the CA their connections pin (`tls/`), the
 * SPIFFE trust domain's CA and JWT key (`spiffe/`: the SVIDs they hold chain to it) and the admin
 * and metrics tokens. Not included: the embedded server's JetStream data (`nats/`, the buckets are
 * in the backup), the API socket, temporary and reserve files.
 *
 * Every file is read as bytes and written back with mode 0600 in 0700 directories; contents are
 * never logged.
 */
import { chmod, lstat, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join, normalize, sep } from "node:path";
import { ControllerFiles } from "@weft/protocol";
import { BackupError } from "./errors.js";

/** Directories copied whole (regular files only). */
export const STATE_DIRS = ["authority", ControllerFiles.tlsDir, "spiffe"] as const;
/** Single files. */
export const STATE_FILES = [ControllerFiles.adminToken, "metrics-token"] as const;
const SKIP = /(\.tmp|\.reserve)$/;

export interface StateFile {
  /** Path relative to the state directory, with `/` separators. */
  path: string;
  data: Buffer;
}

/** Reads the state files present in `stateDir` (a missing directory or file is left out). */
export async function readStateFiles(stateDir: string): Promise<StateFile[]> {
  const out: StateFile[] = [];
  const add = async (rel: string) => {
    const full = join(stateDir, rel);
    const st = await lstat(full).catch(() => undefined);
    if (!st?.isFile()) return;
    out.push({ path: rel, data: await readFile(full) });
  };
  for (const dir of STATE_DIRS) {
    const names = await readdir(join(stateDir, dir)).catch(() => [] as string[]);
    for (const name of names.sort()) if (!SKIP.test(name)) await add(`${dir}/${name}`);
  }
  for (const f of STATE_FILES) await add(f);
  if (!out.some((f) => f.path === "authority/authority.json")) {
    throw new BackupError(`${join(stateDir, "authority", "authority.json")} is missing: point --state-dir at the controller's state directory`);
  }
  return out;
}

/** Checks a path from a backup names one of the state files (no `..`, no absolute path, nothing else). */
export function checkStatePath(path: string): string {
  const norm = normalize(path);
  const parts = norm.split(sep);
  const ok =
    !norm.startsWith(sep) &&
    !parts.includes("..") &&
    ((parts.length === 2 && (STATE_DIRS as readonly string[]).includes(parts[0]!)) || (parts.length === 1 && (STATE_FILES as readonly string[]).includes(parts[0]!)));
  if (!ok) throw new BackupError(`the backup names a file ${JSON.stringify(path.slice(0, 200))} that is not controller state; refusing it`);
  return norm;
}

/**
 * Files whose difference means another controller's identity is there: the authority's seeds, the
 * CAs' keys and certificates, the tokens. The others (the server certificate a controller renews
 * on its own, the pin file, the local revocation copy) are simply replaced.
 */
const IDENTITY = /^(authority\/authority\.json|tls\/ca\.(crt|key)|spiffe\/.+|admin-token|metrics-token)$/;

/** Identity files already in `stateDir` that the backup would replace with different contents. */
export async function conflictingStateFiles(stateDir: string, files: readonly StateFile[]): Promise<string[]> {
  const differ: string[] = [];
  for (const f of files) {
    if (!IDENTITY.test(f.path)) continue;
    const existing = await readFile(join(stateDir, checkStatePath(f.path))).catch(() => undefined);
    if (existing && !existing.equals(f.data)) differ.push(f.path);
  }
  return differ;
}

/** Writes the state files into `stateDir` (0600 files, 0700 directories). */
export async function writeStateFiles(stateDir: string, files: readonly StateFile[]): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  for (const f of files) {
    const full = join(stateDir, checkStatePath(f.path));
    await mkdir(dirname(full), { recursive: true, mode: 0o700 });
    await writeFile(full, f.data, { mode: 0o600 });
    await chmod(full, 0o600);
  }
}
