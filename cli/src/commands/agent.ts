/** `weft agent`: enroll (once) and keep this host's WireGuard in line with the overlay. */
import { readFile } from "node:fs/promises";
import { startAgent } from "@weft/agent";
import type { Command } from "commander";
import { merge, readConfigFile } from "../config-file.js";
import { UsageError } from "../errors.js";
import { createLogger } from "../log.js";
import { untilSignal } from "./signals.js";

interface AgentFlags {
  config?: string;
  stateDir?: string;
  controller?: string;
  caHash?: string;
  joinKey?: string;
  joinKeyFile?: string;
  cloud?: string;
  metadataEndpoint?: string;
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
  metricsListen?: string;
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

const CLOUDS = ["aws", "azure", "gcp"] as const;

/** `--cloud` and `--metadata-endpoint` as the config's `cloud` (only the keys given, so a config file's stay). */
export function cloudFlags(cloud: string | undefined, metadataEndpoint: string | undefined): Record<string, string> | undefined {
  if (cloud !== undefined && !(CLOUDS as readonly string[]).includes(cloud)) throw new UsageError(`--cloud ${cloud}: want one of ${CLOUDS.join(", ")}`);
  if (cloud === undefined && metadataEndpoint === undefined) return undefined;
  return { ...(cloud === undefined ? {} : { provider: cloud }), ...(metadataEndpoint === undefined ? {} : { metadataEndpoint }) };
}

export function registerAgent(program: Command): void {
  program
    .command("agent")
    .description("run the host agent")
    .option("--config <file>", "YAML config file; flags override it")
    .option("--state-dir <dir>", "keys and state (default /var/lib/weft/agent)")
    .option("--controller <url>", "controller API URL (https://host:8080), needed to enroll")
    .option("--ca-hash <sha256:hex>", "pin of the controller's CA, printed by `weft keys create`; required for an https controller")
    .option("--join-key <key>", "join key for the first enrollment (or $WEFT_JOIN_KEY); optional with --cloud when an enrollment policy admits the instance")
    .option("--join-key-file <file>", "read the join key from a file")
    .option("--cloud <provider>", "aws | azure | gcp: present this instance's identity from the cloud's metadata service at enrollment")
    .option("--metadata-endpoint <url>", "base URL of the metadata service (default the cloud's link-local one)")
    .option("--name <name>", "node name (default: host name)")
    .option("--site <site>", "site: the network this host shares private addresses with (default 'default')")
    .option("--interface <name>", "WireGuard interface name (default weft0)")
    .option("--implementation <kind>", "auto | kernel | userspace (wireguard-go)")
    .option("--listen-port <port>", "WireGuard UDP port (default 51820)")
    .option("--mtu <mtu>", "interface MTU, or auto: the underlay's less 80 (default auto)")
    .option("--private-endpoint <ip:port>", "endpoint for peers in the same site (default: default-route address)")
    .option("--public-endpoint <ip:port>", "endpoint reachable from other sites; omit when behind NAT")
    .option("--workload <spec>", "host a workload: <name>=<namespace>/<service-account>@<netns> (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .option("--bpf-pin-dir <dir>", "where eBPF programs and maps are pinned (default /sys/fs/bpf/weft)")
    .option("--no-datapath", "WireGuard only: no eBPF policy, counters or same-site encapsulation")
    .option("--vxlan-interface <name>", "VXLAN device for same-site encapsulation (default weft-vxlan)")
    .option("--vxlan-port <port>", "VXLAN UDP port (default 4789)")
    .option("--metrics-listen <host:port>", "Prometheus /metrics endpoint (default 127.0.0.1:9464; '' turns it off)")
    .option("--no-gateway-snat", "as its site's gateway, forward without masquerading (the site's router routes the overlay back)")
    .action(async (f: AgentFlags) => {
      const log = createLogger();
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
        cloud: cloudFlags(f.cloud, f.metadataEndpoint),
        name: f.name,
        site: f.site,
        interface: { name: f.interface, implementation: f.implementation, listenPort: int(f.listenPort), mtu: f.mtu === "auto" ? "auto" : int(f.mtu) },
        endpoints: { private: f.privateEndpoint, public: f.publicEndpoint },
        datapath: { enabled: f.datapath ? undefined : false, pinDir: f.bpfPinDir, vxlanInterface: f.vxlanInterface, vxlanPort: int(f.vxlanPort) },
        workloads: f.workload.length > 0 ? f.workload.map(parseWorkloadFlag) : undefined,
        metrics: { listen: f.metricsListen },
        gateway: { snat: f.gatewaySnat ? undefined : false },
      });
      const running = await startAgent(config, log);
      await untilSignal();
      await running.stop();
    });
}
