/** The admin bearer token (and the metrics token): configured, or generated once and kept mode 0600 in the state dir. */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ControllerFiles } from "@weft/protocol";

export const ADMIN_TOKEN_FILE = ControllerFiles.adminToken;

/** The read-only token for GET /metrics, kept beside the admin token. */
export const METRICS_TOKEN_FILE = "metrics-token";

export async function loadOrCreateAdminToken(stateDir: string): Promise<string> {
  return loadOrCreateToken(stateDir, ADMIN_TOKEN_FILE);
}

/** A token kept in `<stateDir>/<file>` (mode 0600), generated the first time. */
export async function loadOrCreateToken(stateDir: string, file: string): Promise<string> {
  const path = join(stateDir, file);
  try {
    const token = (await readFile(path, "utf8")).trim();
    if (token.length >= 16) return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString("base64url");
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return token;
}
