/**
 * The state files of a backup: which are read, which paths a backup may name, which differences
 * make a restore refuse (another controller's identity) and the modes they are written with.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkStatePath, conflictingStateFiles, readStateFiles, writeStateFiles } from "./files.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-backup-files-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("backup - state files", () => {
  it("backup - reads the authority, CAs and tokens, skips temporary and reserve files, refuses a directory without an authority", async () => {
    await expect(readStateFiles(dir), "no authority.json").rejects.toThrow(/authority\.json is missing/);
    await mkdir(join(dir, "authority"));
    await mkdir(join(dir, "tls"));
    await mkdir(join(dir, "nats"));
    await writeFile(join(dir, "authority", "authority.json"), "{}");
    await writeFile(join(dir, "authority", "revocations.reserve"), "x");
    await writeFile(join(dir, "authority", "revocations.json.ab12.tmp"), "x");
    await writeFile(join(dir, "tls", "ca.key"), "k");
    await writeFile(join(dir, "nats", "nats-server.conf"), "c");
    await writeFile(join(dir, "admin-token"), "t");
    const got = (await readStateFiles(dir)).map((f) => f.path);
    expect(got, "files read").toEqual(["authority/authority.json", "tls/ca.key", "admin-token"]);
  });

  it("backup - a path outside the state files is refused", () => {
    for (const bad of ["../etc/passwd", "/etc/passwd", "authority/../../x", "nats/jetstream/x", "authority/a/b", "api.sock"]) {
      expect(() => checkStatePath(bad), `path ${bad}`).toThrow(/not controller state/);
    }
    expect(checkStatePath("tls/ca.crt"), "a CA certificate").toBe("tls/ca.crt");
  });

  it("backup - only a different identity file conflicts; files are written 0600 in 0700 directories", async () => {
    const files = [
      { path: "authority/authority.json", data: Buffer.from("seeds-a") },
      { path: "tls/server.crt", data: Buffer.from("cert-a") },
    ];
    expect(await conflictingStateFiles(dir, files), "fresh directory").toEqual([]);
    await writeStateFiles(dir, files);
    expect(((await stat(join(dir, "authority", "authority.json"))).mode & 0o777).toString(8), "file mode").toBe("600");
    expect(((await stat(join(dir, "authority"))).mode & 0o777).toString(8), "directory mode").toBe("700");
    expect(await conflictingStateFiles(dir, files), "same contents").toEqual([]);
    await writeFile(join(dir, "tls", "server.crt"), "renewed");
    expect(await conflictingStateFiles(dir, files), "a renewed server certificate is no conflict").toEqual([]);
    await writeFile(join(dir, "authority", "authority.json"), "seeds-b");
    expect(await conflictingStateFiles(dir, files), "another authority").toEqual(["authority/authority.json"]);
    await writeStateFiles(dir, files);
    expect(await readFile(join(dir, "tls", "server.crt"), "utf8"), "replaced on restore").toBe("cert-a");
  });
});
