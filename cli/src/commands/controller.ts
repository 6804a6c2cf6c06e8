/** `weft controller`: run the control plane until SIGINT/SIGTERM. */
import { dirname, isAbsolute, resolve } from "node:path";
import { ControllerConfig, startController } from "@weft/controller";
import type { Command } from "commander";
import { merge, readConfigFile } from "../config-file.js";
import { UsageError } from "../errors.js";
import { parseDuration } from "../output.js";
import { createLogger } from "../log.js";
import { DEFAULT_CONTROLLER_STATE_DIR } from "./admin-client.js";
import { untilSignal } from "./signals.js";

interface ControllerFlags {
  config?: string;
  stateDir?: string;
  natsUrl?: string;
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

/** Commander collector for a repeatable option. */
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/** A duration flag (`90s`, `1h`) in seconds; undefined when absent. */
function seconds(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = parseDuration(v);
  if (s === undefined) throw new UsageError(`${flag} ${JSON.stringify(v)}: want a duration like 30s, 15m or 1h`);
  return s;
}

export function registerController(program: Command): void {
  program
    .command("controller")
    .description("run the controller (embedded NATS unless --nats-url is given)")
    .option("--config <file>", "YAML config file; flags override it")
    .option("--state-dir <dir>", `keys, admin token and embedded NATS data (default ${DEFAULT_CONTROLLER_STATE_DIR})`)
    .option("--nats-url <url>", "use this NATS instead of starting one")
    .option("--nats-host <host>", "embedded NATS listen address (default 0.0.0.0)")
    .option("--nats-port <port>", "embedded NATS port (default 4222)")
    .option("--nats-advertise <url...>", "NATS URLs handed to agents (default: derived from the API host they used)")
    .option("--api-host <host>", "REST API listen address (default 0.0.0.0)")
    .option("--api-port <port>", "REST API port (default 8080)")
    .option("--api-san <name...>", "names and addresses the API certificate covers (default: the host's IPv4 addresses)")
    .option("--no-api-tls", "serve the API over plain HTTP (join keys cross the network in clear text)")
    .option("--overlay-cidr <cidr>", "overlay node address range (default 100.64.0.0/16)")
    .option("--workload-cidr <cidr>", "workload address range, disjoint from --overlay-cidr; each node gets a prefix of it (default 100.80.0.0/12)")
    .option("--workload-prefix-length <n>", "length of each node's workload prefix (default 24)")
    .option("--plaintext-site <site>", "a site whose same-site workload traffic may go as plaintext VXLAN instead of WireGuard (repeatable)", collect)
    .option("--inventory-config <file>", "YAML file of the inventory section: cloud accounts to list, intervalSeconds, maxRemovalShare (see controller/README.md)")
    .option("--x509-svid-ttl <duration>", "lifetime of X.509-SVIDs, e.g. 1h or 30s; agents rotate at half of it (default 1h)")
    .option("--jwt-svid-ttl <duration>", "lifetime of JWT-SVIDs (default 5m)")
    .action(async (f: ControllerFlags) => {
      const log = createLogger();
      const config = merge(await readConfigFile(f.config), {
        stateDir: f.stateDir,
        nats: { url: f.natsUrl, listenHost: f.natsHost, port: int(f.natsPort), advertise: f.natsAdvertise },
        api: { listenHost: f.apiHost, port: int(f.apiPort), tls: { enabled: f.apiTls ? undefined : false, sans: f.apiSan } },
        overlay: { cidr: f.overlayCidr, workloadCidr: f.workloadCidr, workloadPrefixLength: int(f.workloadPrefixLength), plaintextSites: f.plaintextSite },
        spiffe: { x509SvidTtlSeconds: seconds("--x509-svid-ttl", f.x509SvidTtl), jwtSvidTtlSeconds: seconds("--jwt-svid-ttl", f.jwtSvidTtl) },
        inventory: f.inventoryConfig === undefined ? undefined : await readInventoryConfig(f.inventoryConfig),
      });
      const running = await startController(config, log);
      await untilSignal();
      log.info("shutting down");
      await running.stop();
    });

  program
    .command("nats-config")
    .description("print the nats-server config fragment that makes an external NATS trust this controller")
    .option("--state-dir <dir>", "controller state directory", DEFAULT_CONTROLLER_STATE_DIR)
    .action(async (f: { stateDir: string }) => {
      const { natsServerConfigFragment } = await import("@weft/controller");
      process.stdout.write(await natsServerConfigFragment(f.stateDir));
    });
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
