/** `weft agent`: enroll (once) and keep this host's WireGuard in line with the overlay. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { LOCAL_API_SOCKET, callLocalApi, startAgent } from "@weft/agent";
import { merge, readConfigFile } from "../config-file.js";
import { UsageError } from "../errors.js";
import { createLogger } from "../log.js";
import { printJson } from "../output.js";
import { cloudFlags } from "./cloud-flags.js";
import { untilSignal } from "./signals.js";

export interface AgentFlags {
  config?: string;
  stateDir?: string;
  controller?: string;
  caHash?: string;
  joinKey?: string;
  joinKeyFile?: string;
  cloud?: string;
  metadataEndpoint?: string;
  cloudAudience?: string;
  name?: string;
  site?: string;
  interface?: string;
  implementation?: string;
  listenPort?: string;
  mtu?: string;
  privateEndpoint?: string;
  publicEndpoint?: string;
  workload: string[];
  bpfPinDir?: string;
  datapath: boolean;
  gatewaySnat: boolean;
  vxlanInterface?: string;
  vxlanPort?: string;
  flowTableEntries?: string;
  metricsListen?: string;
  flowInterval?: string;
  flowLogFile?: string;
  otlpEndpoint?: string;
  services: boolean;
  serviceCgroup?: string;
  dnsListen?: string;
  dnsUpstream: string[];
  spiffeSocket?: string;
  spiffeHostUid: string[];
}

/** `--spiffe-host-uid 1000` → 1000; anything but a uid is a usage error. */
function hostUid(v: string): number {
  if (!/^\d{1,10}$/.test(v) || Number(v) > 0xfffffffe) throw new UsageError(`--spiffe-host-uid ${JSON.stringify(v)}: want a numeric uid, e.g. 0`);
  return Number(v);
}

const WORKLOAD_FLAG = /^([^=]+)=([^/]+)\/([^@]+)@(.+)$/;

/** `web=shop/web@ns-web` → a workload spec; anything else is a usage error naming the format. */
export function parseWorkloadFlag(value: string): { name: string; namespace: string; serviceAccount: string; netns: string } {
  const m = WORKLOAD_FLAG.exec(value);
  if (!m?.[1] || !m[2] || !m[3] || !m[4]) {
    throw new UsageError(`--workload ${JSON.stringify(value)}: expected <name>=<namespace>/<service-account>@<netns>, e.g. web=shop/web@web-ns`);
  }
  return { name: m[1], namespace: m[2], serviceAccount: m[3], netns: m[4] };
}

const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/**
 * How packaging/agent.cjs loaded the installed agent's bundle: with the V8 code cache made when the
 * package was built (`used`), or compiling it because this runtime refused the cache (`rejected`: a
 * different Node.js or V8 flags) or there was none (`missing`).
 */
export interface CodeLoad {
  codeCache: "used" | "rejected" | "missing";
}

/** Runs the agent until SIGINT or SIGTERM. `load`: how the package's loader loaded it, when it did. */
export async function runAgent(f: AgentFlags, load?: CodeLoad): Promise<void> {
  const log = createLogger();
  if (load?.codeCache === "used") log.info(load, "loaded the agent with its code cache");
  else if (load) log.warn(load, "loaded the agent without its code cache (it starts slower): reinstall the package if this persists");
  if (f.joinKey !== undefined) log.warn("--join-key puts the key where every local user can read it (/proc/<pid>/cmdline); use --join-key-file or WEFT_JOIN_KEY");
  let joinKey = f.joinKey ?? process.env.WEFT_JOIN_KEY;
  if (f.joinKeyFile) {
    try {
      joinKey = (await readFile(f.joinKeyFile, "utf8")).trim();
    } catch (err) {
      throw new UsageError(`cannot read --join-key-file ${f.joinKeyFile}: ${(err as Error).message}`);
    }
  }
  const config = merge(await readConfigFile(f.config), {
    stateDir: f.stateDir,
    controllerUrl: f.controller,
    controllerCaHash: f.caHash,
    joinKey,
    cloud: cloudFlags(f.cloud, f.metadataEndpoint, f.cloudAudience),
    name: f.name,
    site: f.site,
    interface: { name: f.interface, implementation: f.implementation, listenPort: int(f.listenPort), mtu: f.mtu === "auto" ? "auto" : int(f.mtu) },
    endpoints: { private: f.privateEndpoint, public: f.publicEndpoint },
    datapath: { enabled: f.datapath ? undefined : false, pinDir: f.bpfPinDir, vxlanInterface: f.vxlanInterface, vxlanPort: int(f.vxlanPort), flowTableEntries: int(f.flowTableEntries) },
    workloads: f.workload.length > 0 ? f.workload.map(parseWorkloadFlag) : undefined,
    metrics: { listen: f.metricsListen },
    spiffe: { socket: f.spiffeSocket, hostUids: f.spiffeHostUid.length > 0 ? f.spiffeHostUid.map(hostUid) : undefined },
    flows: { intervalSeconds: int(f.flowInterval), file: f.flowLogFile, ...(f.otlpEndpoint ? { otlp: { endpoint: f.otlpEndpoint } } : {}) },
    gateway: { snat: f.gatewaySnat ? undefined : false },
    services: {
      enabled: f.services ? undefined : false,
      cgroup: f.serviceCgroup,
      dns: { listen: f.dnsListen, upstream: f.dnsUpstream.length > 0 ? f.dnsUpstream : undefined },
    },
  });
  const running = await startAgent(config, log);
  await untilSignal();
  await running.stop();
}

/**
 * `weft agent rotate-key`: asks the running agent (its local API) to rotate the WireGuard key; the
 * agent answers once the controller has the new public key and the interface uses it.
 */
export async function runRotateKey(o: { stateDir: string; json?: boolean }): Promise<void> {
  const got = await callLocalApi<{ publicKey: string }>(join(o.stateDir, LOCAL_API_SOCKET), "POST", "/v1/rotate-key", undefined, 120_000);
  if (o.json) return printJson(got);
  process.stdout.write(`rotated the WireGuard key; new public key ${got.publicKey}\n`);
}
