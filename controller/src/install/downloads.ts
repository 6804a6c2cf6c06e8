/**
 * What a new VM fetches from the controller to join, over the same pinned-CA HTTPS as the API, so
 * it needs nothing but the controller's address and CA hash:
 *   GET /ca.pem            the controller's CA certificate, which the VM checks against the CA hash
 *                          before it trusts anything else (fetched without verification: the pin is the check)
 *   GET /install.sh        the installer (`curl … | sh -s -- --ca-hash … --join-key-file …`)
 *   GET /download          the packages on offer, one per line: `<file> <bytes> <sha256>`
 *   GET /download/<file>   one package, e.g. weft_0.1.0_amd64.deb
 * All three read the configured downloads directory (`downloads.dir`; `npm run package` writes one
 * to packaging/out); without one they are not served at all. Public like /healthz: nothing served
 * is secret, and the join key never passes here. Only file names of the package's own form are
 * served; anything else is 404.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { NotFoundError } from "../errors.js";
import type { Route } from "../api/routes.js";

export const INSTALLER_FILE = "install.sh";

/** `weft_<version>_<arch>.deb`: the only files /download serves. */
export const PACKAGE_FILE = /^weft_[0-9][A-Za-z0-9.+~]{0,63}_(amd64|arm64)\.deb$/;

export interface DownloadsOptions {
  /** The downloads directory; undefined: this controller serves no downloads (no routes). */
  dir: string | undefined;
  /** The CA (PEM) the API's certificate chains to; undefined when the API is plain HTTP (then no /ca.pem). */
  caPem: string | undefined;
}

export interface PackageEntry {
  file: string;
  bytes: number;
  sha256: string;
}

/** The listing's text: one `<file> <bytes> <sha256>` line per package, newest version last. */
export function formatListing(entries: readonly PackageEntry[]): string {
  return entries.map((e) => `${e.file} ${e.bytes} ${e.sha256}\n`).join("");
}

/** Package files by architecture, then by version with digit runs compared as numbers (0.1.2 < 0.1.10). */
export function sortPackages(files: readonly string[]): string[] {
  const collator = new Intl.Collator("en", { numeric: true });
  const parts = (f: string) => {
    const [, version = "", arch = ""] = /^weft_(.+)_([^_]+)\.deb$/.exec(f) ?? [];
    return { version, arch };
  };
  return files
    .filter((f) => PACKAGE_FILE.test(f))
    .sort((a, b) => {
      const pa = parts(a);
      const pb = parts(b);
      return pa.arch === pb.arch ? collator.compare(pa.version, pb.version) : pa.arch < pb.arch ? -1 : 1;
    });
}

const BinaryFile = z.string().meta({ format: "binary" });

export function downloadRoutes(opts: DownloadsOptions): Route[] {
  const dir = opts.dir;
  if (dir === undefined) return [];
  // sha256 per file, recomputed when its size or mtime changes.
  const sums = new Map<string, { key: string; sha256: string }>();
  const regularFile = async (file: string) => {
    const info = await stat(join(dir, file)).catch(() => undefined);
    if (!info?.isFile()) throw new NotFoundError(`no ${file} in this controller's downloads`);
    return info;
  };
  const sha256Of = async (path: string, key: string): Promise<string> => {
    const cached = sums.get(path);
    if (cached?.key === key) return cached.sha256;
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    const sha256 = hash.digest("hex");
    sums.set(path, { key, sha256 });
    return sha256;
  };

  const caPem = opts.caPem;
  return [
    ...(caPem === undefined
      ? []
      : [
          {
            method: "GET",
            path: "/ca.pem",
            summary: "The controller's CA certificate (PEM): check it against the CA hash, then trust it for the downloads",
            auth: "none",
            response: z.string(),
            produces: "file",
            contentType: () => "application/x-pem-file",
            handler: async () => caPem,
          } satisfies Route,
        ]),
    {
      method: "GET",
      path: "/install.sh",
      summary: "The installer: detects Debian or Ubuntu, installs the package from this controller and joins with `weft up`",
      auth: "none",
      response: z.string(),
      produces: "file",
      contentType: () => "text/x-shellscript; charset=utf-8",
      handler: async () => {
        await regularFile(INSTALLER_FILE);
        return createReadStream(join(dir, INSTALLER_FILE));
      },
    },
    {
      method: "GET",
      path: "/download",
      summary: "The packages this controller serves, one per line: `<file> <bytes> <sha256>`",
      auth: "none",
      response: z.string(),
      produces: "text/plain",
      handler: async () => {
        const files = sortPackages(await readdir(dir).catch(() => []));
        const entries: PackageEntry[] = [];
        for (const file of files) {
          const info = await stat(join(dir, file)).catch(() => undefined);
          if (!info?.isFile()) continue;
          entries.push({ file, bytes: info.size, sha256: await sha256Of(join(dir, file), `${info.size}:${info.mtimeMs}`) });
        }
        return formatListing(entries);
      },
    },
    {
      method: "GET",
      path: "/download/:file",
      summary: "One package (weft_<version>_<arch>.deb) from this controller's downloads",
      auth: "none",
      response: BinaryFile,
      produces: "file",
      contentType: () => "application/vnd.debian.binary-package",
      handler: async (ctx) => {
        const file = ctx.params["file"] ?? "";
        if (!PACKAGE_FILE.test(file)) throw new NotFoundError("no such download: packages are named weft_<version>_<arch>.deb (GET /download lists them)");
        await regularFile(file);
        return createReadStream(join(dir, file));
      },
    },
  ];
}
