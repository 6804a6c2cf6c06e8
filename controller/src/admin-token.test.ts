/** The admin token file: made 0600; a file others can write or another user owns is refused; one others can read is repaired loudly. */
import { chmod, chown, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ADMIN_TOKEN_FILE, AdminTokenFileError, loadOrCreateAdminToken } from "./admin-token.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-token-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("admin token file", () => {
  it("admin token - made with mode 0600 and read back", async () => {
    const token = await loadOrCreateAdminToken(dir);
    expect(((await stat(join(dir, ADMIN_TOKEN_FILE))).mode & 0o777).toString(8), "mode").toBe("600");
    expect(await loadOrCreateAdminToken(dir), "same token on the next start").toBe(token);
  });

  it("admin token - a world- or group-writable file is refused, not used", async () => {
    for (const mode of [0o666, 0o620, 0o602]) {
      await writeFile(join(dir, ADMIN_TOKEN_FILE), "attacker-chosen-token-0123456789\n");
      await chmod(join(dir, ADMIN_TOKEN_FILE), mode);
      const err = await loadOrCreateAdminToken(dir).catch((e: unknown) => e);
      expect(err, `mode ${mode.toString(8)}: want AdminTokenFileError`).toBeInstanceOf(AdminTokenFileError);
      expect(String(err), "the message says what to do").toMatch(/others may have written the token; remove it/);
    }
  });

  it("admin token - a file others can read is set to 0600 with a warning", async () => {
    await writeFile(join(dir, ADMIN_TOKEN_FILE), "readable-token-0123456789abcdef\n");
    await chmod(join(dir, ADMIN_TOKEN_FILE), 0o644);
    const lines: string[] = [];
    const log = pino({ level: "warn" }, { write: (l: string) => void lines.push(l) });
    expect(await loadOrCreateAdminToken(dir, log), "token").toBe("readable-token-0123456789abcdef");
    expect(((await stat(join(dir, ADMIN_TOKEN_FILE))).mode & 0o777).toString(8), "mode after").toBe("600");
    expect(lines.join(""), "a warning").toMatch(/readable by others/);
  });

  it.skipIf(process.getuid?.() !== 0)("admin token - a file another user owns is refused", async () => {
    await writeFile(join(dir, ADMIN_TOKEN_FILE), "someone-elses-token-0123456789ab\n", { mode: 0o600 });
    await chown(join(dir, ADMIN_TOKEN_FILE), 65534, 65534);
    const err = await loadOrCreateAdminToken(dir).catch((e: unknown) => e);
    expect(String(err), "refused").toMatch(/belongs to uid 65534/);
  });
});
