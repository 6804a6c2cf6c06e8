/** `weft controller`: run the control plane until SIGINT/SIGTERM. */
import { dirname, isAbsolute, resolve } from "node:path";
import { ControllerConfig, natsServerConfigFragment, startController } from "@weft/controller";
import { merge, readConfigFile } from "../config-file.js";
import { UsageError } from "../errors.js";
import { parseDuration } from "../output.js";
import { createLogger } from "../log.js";
import { untilSignal } from "./signals.js";

export interface ControllerFlags {
  config?: string;
  stateDir?: string;
  natsUrl?: string[];
  natsReplicas?: string;
  natsHost?: string;
  natsPort?: string;
  natsAdvertise?: string[];
  apiHost?: string;
  apiPort?: string;
  apiSan?: string[];
  apiTls: boolean;
  overlayCidr?: string;
  workloadCidr?: string;
  workloadPrefixLength?: string;
  plaintextSite?: string[];
  inventoryConfig?: string;
  x509SvidTtl?: string;
  jwtSvidTtl?: string;
}

const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/** A duration flag (`90s`, `1h`) in seconds; undefined when absent. */
function seconds(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = parseDuration(v);
  if (s === undefined) throw new UsageError(`${flag} ${JSON.stringify(v)}: want a duration like 30s, 15m or 1h`);
  return s;
}

/** Runs the controller until SIGINT or SIGTERM. */
export async function runController(f: ControllerFlags): Promise<void> {
  const log = createLogger();
  const config = merge(await readConfigFile(f.config), {
    stateDir: f.stateDir,
    nats: {
      ...(f.natsUrl && f.natsUrl.length > 1 ? { urls: f.natsUrl } : { url: f.natsUrl?.[0] }),
      replicas: int(f.natsReplicas),
      listenHost: f.natsHost,
      port: int(f.natsPort),
      advertise: f.natsAdvertise,
    },
    api: { listenHost: f.apiHost, port: int(f.apiPort), tls: { enabled: f.apiTls ? undefined : false, sans: f.apiSan } },
    overlay: { cidr: f.overlayCidr, workloadCidr: f.workloadCidr, workloadPrefixLength: int(f.workloadPrefixLength), plaintextSites: f.plaintextSite },
    spiffe: { x509SvidTtlSeconds: seconds("--x509-svid-ttl", f.x509SvidTtl), jwtSvidTtlSeconds: seconds("--jwt-svid-ttl", f.jwtSvidTtl) },
    inventory: f.inventoryConfig === undefined ? undefined : await readInventoryConfig(f.inventoryConfig),
  });
  // Listening from the start: a SIGTERM while the controller starts (a service manager stopping it
  // early) stops it once started, embedded nats-server included; Node's default would end the
  // process at once and leave that nats-server running. A second signal still ends it at once.
  const signalled = untilSignal();
  const running = await startController(config, log);
  await signalled;
  log.info("shutting down");
  await running.stop();
}

/** `weft nats-config`: the nats-server config fragment for an external NATS. */
export async function printNatsConfig(f: { stateDir: string }): Promise<void> {
  process.stdout.write(await natsServerConfigFragment(f.stateDir));
}

/**
 * The inventory section from its own YAML file (the section itself, or a document whose only key
 * is `inventory`), validated here so the error names the file and the field. Relative `file` and
 * `caFile` paths are taken from the file's directory.
 */
export async function readInventoryConfig(path: string): Promise<Record<string, unknown>> {
  const doc = await readConfigFile(path);
  const keys = Object.keys(doc);
  const section = keys.length === 1 && keys[0] === "inventory" ? doc.inventory : doc;
  if (typeof section !== "object" || section === null || Array.isArray(section)) throw new UsageError(`--inventory-config ${path}: inventory must be a mapping of options`);
  const raw = section as Record<string, unknown>;
  const base = dirname(resolve(path));
  const accounts = Array.isArray(raw.accounts)
    ? raw.accounts.map((a: unknown) => {
        if (typeof a !== "object" || a === null) return a;
        const out = { ...(a as Record<string, unknown>) };
        for (const k of ["file", "caFile"]) if (typeof out[k] === "string" && out[k] !== "" && !isAbsolute(out[k])) out[k] = resolve(base, out[k]);
        return out;
      })
    : raw.accounts;
  const resolved = accounts === undefined ? raw : { ...raw, accounts };
  const parsed = ControllerConfig.shape.inventory.safeParse(resolved);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `inventory${i.path.length ? "." : ""}${i.path.map(String).join(".")}: ${i.message}`);
    throw new UsageError(`--inventory-config ${path}: ${issues.join("; ")}`);
  }
  return resolved;
}
