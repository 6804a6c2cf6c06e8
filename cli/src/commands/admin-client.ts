/**
 * How admin commands reach the controller: `--api <url>` or the local unix
 * socket, with the token from `--token`, $WEFT_ADMIN_TOKEN, or the
 * controller's admin-token file in `--controller-state-dir`. An https `--api`
 * is trusted through `--ca-hash` (or $WEFT_CA_HASH), else the local
 * controller's `tls/ca.crt` when readable, else the system's CAs.
 * (The options themselves are declared in program.ts.)
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ControllerClient, ControllerFiles, caHash as caHashSchema } from "@weft/protocol";
import { UsageError } from "../errors.js";

export interface AdminOptions {
  api?: string;
  caHash?: string;
  token?: string;
  controllerStateDir: string;
}

export async function adminClient(opts: AdminOptions): Promise<ControllerClient> {
  if (opts.token !== undefined) process.stderr.write("weft: --token puts the admin token where every local user can read it (/proc/<pid>/cmdline); use WEFT_ADMIN_TOKEN or --controller-state-dir\n");
  const token = opts.token ?? process.env.WEFT_ADMIN_TOKEN ?? (await readToken(opts.controllerStateDir));
  if (opts.api) {
    const caHash = opts.caHash ?? process.env.WEFT_CA_HASH;
    if (caHash !== undefined && !caHashSchema.safeParse(caHash).success) throw new UsageError(`--ca-hash ${caHash}: want sha256: followed by 64 hex digits`);
    const https = /^https:/i.test(opts.api);
    if (!https && caHash !== undefined) throw new UsageError(`--ca-hash needs an https:// --api URL, not ${opts.api}`);
    const caPem = https && caHash === undefined ? await readOptional(join(opts.controllerStateDir, ControllerFiles.tlsDir, ControllerFiles.caCert)) : undefined;
    return new ControllerClient({ url: opts.api, adminToken: token, ...(caHash === undefined ? {} : { caHash }), ...(caPem === undefined ? {} : { caPem }) });
  }
  const socketPath = join(opts.controllerStateDir, ControllerFiles.apiSocket);
  if (!existsSync(socketPath)) {
    throw new UsageError(`no controller socket at ${socketPath}: pass --api <url> or --controller-state-dir <dir> of a running controller`);
  }
  return new ControllerClient({ socketPath, adminToken: token });
}

async function readToken(stateDir: string): Promise<string> {
  const path = join(stateDir, ControllerFiles.adminToken);
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    throw new UsageError(`no admin token: pass --token, set WEFT_ADMIN_TOKEN, or run where ${path} is readable`);
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}
