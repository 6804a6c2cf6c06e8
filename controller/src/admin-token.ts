/**
 * The admin bearer token (and the metrics token): configured, or generated once and kept in
 * `<stateDir>/admin-token` (`metrics-token`). A token file must be the controller user's and mode
 * 0600: a file others can write is refused (its token may be someone else's choice); one others can
 * read is repaired to 0600 with a loud warning (the token may have been read: delete the file to get
 * a new one); one another user owns is refused.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ControllerFiles } from "@weft/protocol";
import type { Logger } from "pino";

export const ADMIN_TOKEN_FILE = ControllerFiles.adminToken;

/** The read-only token for GET /metrics, kept beside the admin token. */
export const METRICS_TOKEN_FILE = "metrics-token";

/** A token file cannot be trusted. Not retryable: fix the file. */
export class AdminTokenFileError extends Error {
  override readonly name = "AdminTokenFileError";
  readonly retryable = false;
}

export async function loadOrCreateAdminToken(stateDir: string, log?: Logger): Promise<string> {
  return loadOrCreateToken(stateDir, ADMIN_TOKEN_FILE, log);
}

/** A token kept in `<stateDir>/<file>` (mode 0600, ours), generated the first time. */
export async function loadOrCreateToken(stateDir: string, file: string, log?: Logger): Promise<string> {
  const path = join(stateDir, file);
  try {
    const st = await stat(path);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) {
      throw new AdminTokenFileError(`${path} belongs to uid ${st.uid}, not to the controller's user (uid ${uid}): remove it (a new token is made) or chown it`);
    }
    const mode = st.mode & 0o777;
    if ((mode & 0o022) !== 0) {
      throw new AdminTokenFileError(`${path} has mode ${mode.toString(8)}: others may have written the token; remove it (a new token is made at the next start)`);
    }
    if ((mode & 0o044) !== 0) {
      await chmod(path, 0o600);
      log?.warn({ path, mode: mode.toString(8) }, "the token file was readable by others: set its mode to 0600; the token may have been read — delete the file and restart to make a new one");
    }
    const token = (await readFile(path, "utf8")).trim();
    if (token.length >= 16) return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString("base64url");
  const fh = await open(path, "w", 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(`${token}\n`);
  } finally {
    await fh.close();
  }
  return token;
}
