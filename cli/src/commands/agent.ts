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
  name?: string;
  site?: string;
  interface?: string;
  implementation?: string;
  listenPort?: string;
  mtu?: string;
  privateEndpoint?: string;
  publicEndpoint?: string;
}

const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));

export function registerAgent(program: Command): void {
  program
    .command("agent")
    .description("run the host agent")
    .option("--config <file>", "YAML config file; flags override it")
    .option("--state-dir <dir>", "keys and state (default /var/lib/weft/agent)")
    .option("--controller <url>", "controller API URL (https://host:8080), needed to enroll")
    .option("--ca-hash <sha256:hex>", "pin of the controller's CA, printed by `weft keys create`; required for an https controller")
    .option("--join-key <key>", "join key for the first enrollment (or $WEFT_JOIN_KEY)")
    .option("--join-key-file <file>", "read the join key from a file")
    .option("--name <name>", "node name (default: host name)")
    .option("--site <site>", "site: the network this host shares private addresses with (default 'default')")
    .option("--interface <name>", "WireGuard interface name (default weft0)")
    .option("--implementation <kind>", "auto | kernel | userspace (wireguard-go)")
    .option("--listen-port <port>", "WireGuard UDP port (default 51820)")
    .option("--mtu <mtu>", "interface MTU (default 1420)")
    .option("--private-endpoint <ip:port>", "endpoint for peers in the same site (default: default-route address)")
    .option("--public-endpoint <ip:port>", "endpoint reachable from other sites; omit when behind NAT")
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
        name: f.name,
        site: f.site,
        interface: { name: f.interface, implementation: f.implementation, listenPort: int(f.listenPort), mtu: int(f.mtu) },
        endpoints: { private: f.privateEndpoint, public: f.publicEndpoint },
      });
      const running = await startAgent(config, log);
      await untilSignal();
      await running.stop();
    });
}
