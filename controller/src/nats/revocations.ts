/**
 * The revocation list of the WEFT account, persisted beside the authority's seeds
 * in `<authorityDir>/revocations.json`. Each entry maps a user public nkey to a
 * unix time in seconds: nats-server refuses every JWT of that user issued at or
 * before that second (jwt v2 `RevocationList.IsRevoked`: `ts >= iat`).
 *
 * The account JWT is re-signed on every load from this file, then from the
 * `weft-revocations` bucket the controllers share (revocations/shared.ts), which
 * this file is a local copy of: the bucket, not the server's resolver directory,
 * is the source of truth. Writes are atomic (temp file, fsync,
 * rename, fsync of the directory); a file that others can write, or that does not
 * parse, is refused rather than read as empty.
 */
import { randomBytes } from "node:crypto";
import { open, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { AuthorityStateError } from "./errors.js";

const REVOCATIONS_FILE = "revocations.json";
/**
 * Space held back for the revocation list: deleting a compromised node must work on a full disk,
 * so when a write fails for lack of space this file is removed and the write tried again (256 KiB:
 * about 2,700 entries more than fit when it was last re-made). It is made again after each write.
 */
export const RESERVE_FILE = "revocations.reserve";
export const RESERVE_BYTES = 256 * 1024;
const FILE_VERSION = 1;

/** User public nkey → unix seconds; JWTs of that user issued at or before then are refused. */
export type Revocations = ReadonlyMap<string, number>;

interface RevocationsFile {
  version: number;
  /** User public nkey → unix seconds. */
  users: Record<string, number>;
}

/** The revocations file inside an authority directory. */
export function revocationsPath(dir: string): string {
  return join(dir, REVOCATIONS_FILE);
}

/**
 * Reads the revocation list persisted in dir; an absent file is an empty list.
 * Throws AuthorityStateError if the file is corrupt or writable by group/others.
 * `isUserKey` validates each key (kept as a parameter so this module stays free of
 * nkey parsing).
 */
export async function readRevocations(dir: string, isUserKey: (key: string) => boolean): Promise<Map<string, number>> {
  const path = revocationsPath(dir);
  let text: string;
  try {
    const st = await stat(path);
    if ((st.mode & 0o022) !== 0) {
      throw new AuthorityStateError(
        path,
        `mode ${(st.mode & 0o777).toString(8)} lets others un-revoke node credentials; chmod 600 it`,
      );
    }
    text = await readFile(path, "utf8");
  } catch (err) {
    if (err instanceof AuthorityStateError) throw err;
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw new AuthorityStateError(path, "cannot read", { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new AuthorityStateError(path, "not valid JSON; restore it from a backup (an empty list would re-admit deleted nodes)", {
      cause,
    });
  }
  const f = raw as Partial<RevocationsFile> | null;
  if (f === null || typeof f !== "object" || f.version !== FILE_VERSION || typeof f.users !== "object" || f.users === null) {
    throw new AuthorityStateError(path, `unsupported format (want {"version": ${FILE_VERSION}, "users": {…}})`);
  }
  const out = new Map<string, number>();
  for (const [key, at] of Object.entries(f.users)) {
    if (!isUserKey(key)) throw new AuthorityStateError(path, `users: ${JSON.stringify(key.slice(0, 60))} is not a user public nkey`);
    if (typeof at !== "number" || !Number.isSafeInteger(at) || at <= 0) {
      throw new AuthorityStateError(path, `users.${key}: want unix seconds, got ${JSON.stringify(at)}`);
    }
    out.set(key, at);
  }
  return out;
}

/** Makes the reserve file when it is missing (best effort: on a full disk it waits for the next write). */
export async function ensureRevocationReserve(dir: string): Promise<void> {
  const path = join(dir, RESERVE_FILE);
  try {
    if ((await stat(path)).size >= RESERVE_BYTES) return;
  } catch {
    // missing: make it
  }
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(Buffer.alloc(RESERVE_BYTES, 0x5a)); // written, so the blocks are allocated
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch {
    await unlink(tmp).catch(() => {});
  }
}

/**
 * Writes the list atomically and durably (file 0600). When the disk is full, the reserve file is
 * given up and the write tried again. Throws AuthorityStateError.
 */
export async function writeRevocations(dir: string, list: Revocations): Promise<void> {
  try {
    await writeRevocationsOnce(dir, list);
  } catch (err) {
    if (!(err instanceof AuthorityStateError) || !isNoSpace(err.cause)) throw err;
    await unlink(join(dir, RESERVE_FILE)).catch(() => {});
    await writeRevocationsOnce(dir, list);
  }
  await ensureRevocationReserve(dir);
}

function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

async function writeRevocationsOnce(dir: string, list: Revocations): Promise<void> {
  const path = revocationsPath(dir);
  const body: RevocationsFile = { version: FILE_VERSION, users: Object.fromEntries([...list].sort(([a], [b]) => a.localeCompare(b))) };
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(JSON.stringify(body, null, 2) + "\n");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dh = await open(dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw new AuthorityStateError(path, "cannot write the revocation list", { cause: err });
  }
}

/** Merges lists: per key, the later time wins (revocation times only move forward). */
export function mergeRevocations(...lists: Revocations[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const list of lists) {
    for (const [key, at] of list) out.set(key, Math.max(out.get(key) ?? 0, at));
  }
  return out;
}
