/** The admin bearer token: configured, or generated once and kept mode 0600 in the state dir. */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ControllerFiles } from "@weft/protocol";

export const ADMIN_TOKEN_FILE = ControllerFiles.adminToken;

export async function loadOrCreateAdminToken(stateDir: string): Promise<string> {
  const path = join(stateDir, ADMIN_TOKEN_FILE);
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
