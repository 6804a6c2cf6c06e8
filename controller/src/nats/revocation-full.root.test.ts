/**
 * Revoking on a full disk (root: mounts a small tmpfs, removed afterwards also on failure): the
 * authority keeps space in reserve, so the revocation is written and survives a reload even when
 * nothing else can be written.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createUser } from "@nats-io/nkeys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAuthority, loadOrCreateAuthority } from "./authority-file.js";

const run = promisify(execFile);
const root = process.getuid?.() === 0;
let mnt: string;
let mounted = false;

beforeAll(async () => {
  if (!root) return;
  mnt = await mkdtemp(join(tmpdir(), "weft-full-"));
  await run("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "weft-full-test", mnt]);
  mounted = true;
});
afterAll(async () => {
  if (mounted) await run("umount", [mnt]);
  if (mnt) await rm(mnt, { recursive: true, force: true });
});

describe.skipIf(!root)("revocation on a full disk", () => {
  it("revocation - with the disk full the revocation is still written, from the reserve", async () => {
    const dir = join(mnt, "authority");
    const authority = await loadOrCreateAuthority(dir);
    // Fill the filesystem.
    let filled = 0;
    for (;;) {
      try {
        await writeFile(join(mnt, `filler-${filled}`), Buffer.alloc(64 * 1024, 1));
        filled++;
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code, "the filler stops on a full disk").toBe("ENOSPC");
        break;
      }
    }
    const probe = await writeFile(join(mnt, "probe"), "x".repeat(8192)).catch((e: unknown) => e);
    expect((probe as NodeJS.ErrnoException).code, "the disk is full").toBe("ENOSPC");
    const keys = Array.from({ length: 50 }, () => createUser().getPublicKey());
    for (const k of keys) await authority.revokeUser(k);
    const reloaded = await loadAuthority(dir);
    for (const k of keys) expect(reloaded.revokedAt(k), `revocation of ${k} persisted`).toBeDefined();
  });
});
