/**
 * `weft up`: join this host to the overlay as a service. Writes /etc/weft/agent.yaml from its
 * flags (over what the file already says), puts the join key in /etc/weft/join-key (mode 0600,
 * never on a command line), enables and (re)starts the agent service (systemd's
 * weft-agent.service, or without systemd the same command run by weft, see agent-service.ts),
 * waits until the node is online and prints its overlay address. Once enrolled the key file is
 * deleted and dropped from the config: a spent key is not left on disk.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AgentConfig } from "@weft/agent/host";
import { STATUS_FILE, loadState, type AgentState, type AgentStatus } from "@weft/agent/local";
import { stringify } from "yaml";
import { merge, readConfigFile } from "../config-file.js";
import { UsageError } from "../errors.js";
import { printJson } from "../output.js";
import { cloudFlags } from "./cloud-flags.js";
import { HOST_PATHS, detectAgentService, requireRoot } from "./agent-service.js";

export interface UpFlags {
  controller?: string;
  caHash?: string;
  joinKeyFile?: string;
  cloud?: string;
  metadataEndpoint?: string;
  name?: string;
  site?: string;
  privateEndpoint?: string;
  publicEndpoint?: string;
  listenPort?: string;
  mtu?: string;
  timeout: string;
  keepJoinKey?: boolean;
  json?: boolean;
}

const CONFIG_HEADER = [
  "# Written by `weft up`; every key is documented in /usr/share/doc/weft/examples/agent.yaml.",
  "# Change it and run `systemctl restart weft-agent` (`weft service restart` without systemd).",
].join("\n");

/** The config `weft up` writes: the file's keys, overridden by the flags given. Pure. */
export function upConfig(existing: Record<string, unknown>, f: Omit<UpFlags, "timeout" | "json" | "keepJoinKey">, joinKeyFile: string | undefined): Record<string, unknown> {
  const merged = merge(existing, {
    controllerUrl: f.controller,
    controllerCaHash: f.caHash,
    cloud: cloudFlags(f.cloud, f.metadataEndpoint),
    name: f.name,
    site: f.site,
    interface: f.listenPort === undefined && f.mtu === undefined ? undefined : { listenPort: num(f.listenPort), mtu: num(f.mtu) },
    endpoints: f.privateEndpoint === undefined && f.publicEndpoint === undefined ? undefined : { private: f.privateEndpoint, public: f.publicEndpoint },
    joinKeyFile,
  });
  // A key given now replaces a key written into the file by hand.
  if (joinKeyFile !== undefined) delete merged["joinKey"];
  return merged;
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/** Online: enrolled, connected to NATS and holding the current peer set, as written by an agent started at or after `since`. Pure. */
export function onlineState(state: AgentState | undefined, status: AgentStatus | undefined, since: number): { online: boolean; waitingFor: string } {
  if (!state) return { online: false, waitingFor: "enrollment" };
  if (!status || Date.parse(status.updatedAt) < since) return { online: false, waitingFor: "the agent to start" };
  if (status.removed) return { online: false, waitingFor: "nothing: the controller removed this node; delete /var/lib/weft/agent (weft down) to join afresh" };
  if (status.nats !== "connected") return { online: false, waitingFor: `the connection to the controller's NATS (${status.nats})` };
  if (status.stale) return { online: false, waitingFor: "the first peer set" };
  return { online: true, waitingFor: "" };
}

/** Joins this host as a service and prints its overlay address once it is online. */
export async function runUp(f: UpFlags): Promise<void> {
  requireRoot("weft up");
  const timeoutMs = Number(f.timeout) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout ${f.timeout}: want a number of seconds`);
  const paths = HOST_PATHS;
  const existing = existsSync(paths.configFile) ? await readConfigFile(paths.configFile) : {};

  let joinKeyFile: string | undefined;
  if (f.joinKeyFile !== undefined) {
    const key = await readKeyFile(f.joinKeyFile);
    await writeAtomic(paths.joinKeyFile, `${key}\n`, 0o600);
    joinKeyFile = paths.joinKeyFile;
  }
  const config = upConfig(existing, f, joinKeyFile);
  const parsed = AgentConfig.parse(config); // a bad flag or file fails here, naming the key, before anything starts
  const enrolled = (await loadState(parsed.stateDir).catch(() => undefined)) !== undefined;
  if (!enrolled && parsed.controllerUrl === undefined) throw new UsageError("this host is not enrolled: pass --controller <url> --ca-hash <sha256:…>");
  if (!enrolled && parsed.joinKeyFile === undefined && parsed.joinKey === undefined && parsed.cloud === undefined) {
    throw new UsageError("this host is not enrolled: pass --join-key-file <file> (from `weft keys create`), or --cloud aws|azure|gcp to join by instance identity");
  }
  await writeAtomic(paths.configFile, `${CONFIG_HEADER}\n${stringify(config)}`, 0o644);

  const service = detectAgentService(paths);
  const since = Date.now();
  process.stderr.write(`weft: starting the agent (${service.kind === "systemd" ? paths.unitName : `no systemd: ${paths.logFile}`})\n`);
  await service.restart();

  const deadline = since + timeoutMs;
  let waitingFor = "the agent to start";
  let state: AgentState | undefined;
  for (;;) {
    state = await loadState(parsed.stateDir).catch(() => undefined);
    const status = await readFile(join(parsed.stateDir, STATUS_FILE), "utf8")
      .then((t) => JSON.parse(t) as AgentStatus)
      .catch(() => undefined);
    const now = onlineState(state, status, since);
    if (now.online) break;
    waitingFor = now.waitingFor;
    if (status?.removed) throw new Error(`this node was removed from the overlay by the controller; run \`weft down\` and join again`);
    if (!(await service.isRunning())) throw new Error(`the agent stopped while waiting for ${waitingFor}; ${await service.diagnose()}`);
    if (Date.now() > deadline) throw new Error(`not online after ${f.timeout} s: still waiting for ${waitingFor}; ${await service.diagnose()}`);
    await new Promise((r) => setTimeout(r, 250));
  }

  if (joinKeyFile !== undefined && !f.keepJoinKey) {
    await rm(paths.joinKeyFile, { force: true });
    const { joinKeyFile: _spent, ...rest } = config;
    await writeAtomic(paths.configFile, `${CONFIG_HEADER}\n${stringify(rest)}`, 0o644);
  }
  const out = { name: state!.name, nodeId: state!.nodeId, site: state!.site, overlayAddress: state!.overlayAddress };
  if (f.json) return printJson(out);
  process.stderr.write(`weft: ${out.name} is online in site ${out.site}; overlay address:\n`);
  process.stdout.write(`${out.overlayAddress}\n`);
}

/** One join key from a file: one line, no spaces, at most 4 KiB. Never echoed. */
async function readKeyFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read --join-key-file ${path}: ${(err as Error).message}`);
  }
  const key = text.trim();
  if (key === "" || /\s/.test(key) || key.length > 4096) throw new UsageError(`--join-key-file ${path} must hold one join key (one line, as printed by \`weft keys create\`)`);
  return key;
}

async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}
