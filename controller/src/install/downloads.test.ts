/**
 * The downloads a new VM fetches (install.sh, the package list, a package) as the API server
 * serves them: exact bytes with the right content types, a listing that a shell can parse,
 * nothing but package-shaped names served, hostile paths answered 404 without naming the
 * directory, and no routes at all when no directory is configured.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApiServer } from "../api/server.js";
import { downloadRoutes, sortPackages } from "./downloads.js";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

let dir: string;
let app: FastifyInstance;
const installer = "#!/bin/sh\necho install\n";
const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const debs: Record<string, Buffer> = {
  "weft_0.1.10_amd64.deb": Buffer.from("ten"),
  "weft_0.1.2_amd64.deb": Buffer.alloc(70_000, 7),
  "weft_0.1.2_arm64.deb": Buffer.from("arm"),
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-downloads-"));
  await writeFile(join(dir, "install.sh"), installer);
  for (const [name, bytes] of Object.entries(debs)) await writeFile(join(dir, name), bytes);
  await writeFile(join(dir, "notes.txt"), "not a package");
  await writeFile(join(dir, "weft_0.1.0_amd64.deb.partial"), "half");
  await mkdir(join(dir, "weft_9.9.9_amd64.deb")); // a directory with a package's name
  await writeFile(join(dir, "..", `${dir.split("/").pop()}-secret`), "outside");
  await symlink("/etc/hostname", join(dir, "weft_0.0.1_amd64.deb"));
  app = buildApiServer({ routes: downloadRoutes({ dir, caPem: CA_PEM }), adminToken: "admin-token-0123456789", log: pino({ level: "silent" }), version: "test" });
});
afterAll(async () => {
  await app?.close();
  await rm(`${dir}-secret`, { force: true });
  await rm(dir, { recursive: true, force: true });
});

describe("downloads", () => {
  it("downloads - GET /ca.pem serves the CA certificate, no auth", async () => {
    const res = await app.inject({ method: "GET", url: "/ca.pem" });
    expect(res.statusCode, `status: got ${res.statusCode}, want 200`).toBe(200);
    expect(res.headers["content-type"], "content type").toBe("application/x-pem-file");
    expect(res.body, "body").toBe(CA_PEM);
  });

  it("downloads - GET /install.sh serves the installer as a shell script, no auth", async () => {
    const res = await app.inject({ method: "GET", url: "/install.sh" });
    expect(res.statusCode, `status: got ${res.statusCode}, want 200`).toBe(200);
    expect(res.headers["content-type"], "content type").toBe("text/x-shellscript; charset=utf-8");
    expect(res.body, "body: the file's bytes").toBe(installer);
  });

  it("downloads - GET /download lists package files only, by architecture then version, with size and sha256", async () => {
    const res = await app.inject({ method: "GET", url: "/download" });
    expect(res.statusCode, `status: got ${res.statusCode}, want 200`).toBe(200);
    expect(res.headers["content-type"], "content type").toBe("text/plain; charset=utf-8");
    // The symlink to /etc/hostname is a regular file once followed: the admin put it there.
    const hostname = await import("node:fs/promises").then((fs) => fs.readFile("/etc/hostname"));
    const want = [
      `weft_0.0.1_amd64.deb ${hostname.length} ${sha256(hostname)}`,
      `weft_0.1.2_amd64.deb 70000 ${sha256(debs["weft_0.1.2_amd64.deb"]!)}`,
      `weft_0.1.10_amd64.deb 3 ${sha256("ten")}`,
      `weft_0.1.2_arm64.deb 3 ${sha256("arm")}`,
    ];
    expect(res.body.trimEnd().split("\n"), "listing").toEqual(want);
  });

  it("downloads - GET /download/<file> serves the package's exact bytes", async () => {
    const res = await app.inject({ method: "GET", url: "/download/weft_0.1.2_amd64.deb" });
    expect(res.statusCode, `status: got ${res.statusCode}, want 200`).toBe(200);
    expect(res.headers["content-type"], "content type").toBe("application/vnd.debian.binary-package");
    expect(sha256(res.rawPayload), "sha256 of the body").toBe(sha256(debs["weft_0.1.2_amd64.deb"]!));
  });

  it("downloads - names that are not a package, paths out of the directory and directories are 404 without naming the directory", async () => {
    const hostile = [
      "/download/notes.txt",
      "/download/install.sh",
      "/download/weft_0.1.0_amd64.deb.partial",
      "/download/weft_9.9.9_amd64.deb",
      "/download/weft_1.0_amd64.deb",
      "/download/..%2F..%2Fetc%2Fpasswd",
      `/download/..%2F${dir.split("/").pop()}-secret`,
      "/download/weft_0.1.2_amd64.deb%00.txt",
      "/download/weft_0.1.2_amd64.deb/../../etc/passwd",
    ];
    // Longer than the router takes at all: refused before any handler (414).
    const overlong = `/download/weft_${"1".repeat(200)}_amd64.deb`;
    for (const url of [...hostile, overlong]) {
      const res = await app.inject({ method: "GET", url });
      const want = url === overlong ? 414 : 404;
      expect(res.statusCode, `${url}: got ${res.statusCode}, want ${want}`).toBe(want);
      expect(res.body.includes(dir), `${url}: the answer names the directory: ${res.body}`).toBe(false);
    }
  });

  it("downloads - with no directory configured there are no download routes", async () => {
    expect(downloadRoutes({ dir: undefined, caPem: CA_PEM }), "routes").toEqual([]);
    expect(downloadRoutes({ dir, caPem: undefined }).map((r) => r.path), "routes without TLS").toEqual(["/install.sh", "/download", "/download/:file"]);
  });

  it("downloads - package order compares versions as numbers and skips other names", () => {
    expect(sortPackages(["weft_0.10.0_amd64.deb", "x.deb", "weft_0.9.1_amd64.deb", "weft_0.9.1+1_amd64.deb"])).toEqual([
      "weft_0.9.1_amd64.deb",
      "weft_0.9.1+1_amd64.deb",
      "weft_0.10.0_amd64.deb",
    ]);
  });
});
