/**
 * `weft controller backup <dir|file>` and `weft controller restore <dir|file>`: the controller
 * workspace does the work (controller/src/backup); this reads the same config and flags as
 * `weft controller` to find the state directory and the store, and prints what was done.
 */
import { ControllerConfig, backupController, restoreController } from "@weft/controller";
import { merge, readConfigFile } from "../config-file.js";
import { UsageError } from "../errors.js";
import { createLogger } from "../log.js";
import { formatTable, printJson } from "../output.js";

export interface BackupFlags {
  config?: string;
  stateDir?: string;
  natsUrl?: string[];
  natsPort?: string;
  json?: boolean;
}

export interface RestoreFlags extends BackupFlags {
  natsReplicas?: string;
  force?: boolean;
}

const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));

async function target(f: BackupFlags & { natsReplicas?: string }) {
  const input = merge(await readConfigFile(f.config), {
    stateDir: f.stateDir,
    nats: { ...(f.natsUrl && f.natsUrl.length > 1 ? { urls: f.natsUrl } : { url: f.natsUrl?.[0] }), port: int(f.natsPort), replicas: int(f.natsReplicas) },
  });
  const parsed = ControllerConfig.safeParse(input);
  if (!parsed.success) throw new UsageError(`controller config: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const c = parsed.data;
  const urls = c.nats.urls ?? (c.nats.url ? [c.nats.url] : undefined);
  return { config: c, store: { stateDir: c.stateDir, ...(urls ? { urls } : {}), embeddedPort: c.nats.port, ...(c.nats.caFile ? { caFile: c.nats.caFile } : {}) } };
}

export async function runBackup(path: string, f: BackupFlags): Promise<void> {
  const { store } = await target(f);
  const result = await backupController({ ...store, path, log: createLogger() });
  if (f.json) return printJson(result);
  process.stdout.write(`backup written to ${result.path} (${result.layout}); keep it as secret as the signing keys it holds\n`);
  process.stdout.write(formatTable(["BUCKET", "RECORDS", "REVISION", "BYTES"], result.streams.map((s) => [s.stream, String(s.messages), String(s.lastSeq), String(s.bytes)])) + "\n");
  process.stdout.write(`state files: ${result.files.join(", ")}\n`);
}

export async function runRestore(path: string, f: RestoreFlags): Promise<void> {
  const { config, store } = await target(f);
  // The target's replica count (nats.replicas, default 1): a cluster's backup restored into one server becomes R1.
  const result = await restoreController({ ...store, path, force: f.force ?? false, replicas: config.nats.replicas, log: createLogger() });
  if (f.json) return printJson(result);
  process.stdout.write(`restored the backup of ${result.createdAt} into ${store.stateDir}${store.urls ? ` and ${store.urls.join(", ")}` : " and its embedded NATS"}\n`);
  if (result.replaced.length > 0) process.stdout.write(`replaced (--force): ${result.replaced.join(", ")}\n`);
  process.stdout.write(formatTable(["BUCKET", "RECORDS", "BACKUP REVISION", "REVISION"], result.streams.map((s) => [s.stream, String(s.messages), String(s.backupLastSeq), String(s.lastSeq)])) + "\n");
  process.stdout.write("revisions moved past any written since the backup: agents take the restored records as newer than what they hold\n");
  process.stdout.write("start `weft controller` with the same state directory and config; agents reconnect without enrolling again\n");
}
