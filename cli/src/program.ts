/**
 * Every `weft` command with its options: what `--help` shows, declared without loading any
 * command. Each action imports its command's module (and so the packages it needs) only when that
 * command runs: `weft status` never loads the controller, fastify or a cloud SDK, and `weft agent`
 * loads the agent alone. This file imports commander and nothing else at run time (eslint.config.js
 * holds it to that; type-only imports are free).
 */
import { Command } from "commander";
import type { CloudProvider, MetadataProvider } from "@weft/protocol";
import { DEFAULT_AGENT_STATE_DIR, DEFAULT_CONTROLLER_STATE_DIR } from "./defaults.js";
import { UsageError } from "./errors.js";
import type { AdminOptions } from "./commands/admin-client.js";
import type { AgentFlags, CodeLoad } from "./commands/agent.js";
import type { ControllerFlags } from "./commands/controller.js";
import type { BackupFlags, RestoreFlags } from "./commands/controller-backup.js";
import type { DownFlags } from "./commands/down.js";
import type { EnrollmentPolicyFlags } from "./commands/enrollment.js";
import type { CreateKeyFlags } from "./commands/keys.js";
import type { LabFlags } from "./commands/lab.js";
import type { MeshExportFlags, MeshImportFlags } from "./commands/mesh.js";
import type { ServiceFlags } from "./commands/service.js";
import type { UpFlags } from "./commands/up.js";

// The provider names for help texts, checked against protocol's types at compile time (no import at run time).
const CLOUD_PROVIDERS = Object.keys({ aws: 1, azure: 1, gcp: 1, onprem: 1 } satisfies Record<CloudProvider, 1>);
const METADATA_PROVIDERS = Object.keys({ aws: 1, azure: 1, gcp: 1 } satisfies Record<MetadataProvider, 1>);

/** Commander collector for a repeatable option. */
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** The `weft` program: every command registered, none loaded. */
export function buildProgram(): Command {
  const program = rootProgram();
  registerController(program);
  registerAgent(program, () => import("./commands/agent.js"));
  registerAgentService(program);
  registerService(program);
  registerHostCommands(program);
  registerAdminCommands(program);
  registerLab(program);
  return program;
}

/** What `weft agent` and `weft agent rotate-key` run. */
export type AgentCommands = Pick<typeof import("./commands/agent.js"), "runAgent" | "runRotateKey">;

/**
 * `weft agent …` as the package runs it (cli/src/agent-main.ts, packaging/agent.cjs): the agent's
 * commands alone, under the same root as buildProgram's, run by `commands` (already loaded there).
 */
export function buildAgentProgram(commands: () => Promise<AgentCommands>, load?: CodeLoad): Command {
  const program = rootProgram();
  registerAgent(program, commands, load);
  return program;
}

function rootProgram(): Command {
  return new Command("weft").description("Weft: one encrypted L3 overlay across clouds and on-prem").version("0.1.0").showHelpAfterError().enablePositionalOptions();
}

function registerController(program: Command): void {
  // Positional options (here and on the program): `weft controller backup --state-dir …` gives --state-dir to backup, not to controller.
  const controller = program.command("controller").enablePositionalOptions();
  controller
    .description("run the controller (embedded NATS unless --nats-url is given)")
    .option("--config <file>", "YAML config file; flags override it")
    .option("--state-dir <dir>", `keys, admin token and embedded NATS data (default ${DEFAULT_CONTROLLER_STATE_DIR})`)
    .option("--nats-url <url...>", "use this NATS instead of starting one; several URLs: a cluster (agents get them all)")
    .option("--nats-replicas <n>", "replicas of every bucket: 3 on a 3-node JetStream cluster (default 1)")
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
    .action(async (f: ControllerFlags) => (await import("./commands/controller.js")).runController(f));
  registerControllerBackup(controller);

  program
    .command("nats-config")
    .description("print the nats-server config fragment that makes an external NATS trust this controller (its operator keys are made on first use)")
    .option("--state-dir <dir>", "controller state directory", DEFAULT_CONTROLLER_STATE_DIR)
    .action(async (f: { stateDir: string }) => (await import("./commands/controller.js")).printNatsConfig(f));
}

/** `weft controller backup|restore`: every bucket and the state files agents' credentials chain to. */
function registerControllerBackup(controller: Command): void {
  const common = (c: Command) =>
    c
      .option("--config <file>", "the controller's YAML config file (state directory and NATS); flags override it")
      .option("--state-dir <dir>", `controller state directory (default ${DEFAULT_CONTROLLER_STATE_DIR})`)
      .option("--nats-url <url...>", "the store's NATS URLs (default: the embedded server of the state directory)")
      .option("--json", "print the result as JSON");
  common(
    controller
      .command("backup")
      .description("back up every bucket (revisions kept) and the state files (authority, CAs, tokens) to a directory (path ending in /) or one file; mode 0600")
      .argument("<dir|file>", "where to write the backup (must not exist)"),
  )
    .option("--nats-port <port>", "port of the running controller's embedded NATS (default 4222)")
    .action(async (path: string, f: BackupFlags) => (await import("./commands/controller-backup.js")).runBackup(path, f));
  common(
    controller
      .command("restore")
      .description("restore a backup into a fresh state directory and store (an empty embedded NATS, or --nats-url); agents come back without enrolling again")
      .argument("<dir|file>", "the backup to restore"),
  )
    .option("--nats-replicas <n>", "replicas of every restored bucket: the target's nats.replicas (default 1; 3 on a 3-node cluster)")
    .option("--force", "replace the Weft buckets and state files already there")
    .action(async (path: string, f: RestoreFlags) => (await import("./commands/controller-backup.js")).runRestore(path, f));
}

function registerAgent(program: Command, commands: () => Promise<AgentCommands>, load?: CodeLoad): void {
  const agent = program
    .command("agent")
    .description("run the host agent")
    .option("--config <file>", "YAML config file; flags override it")
    .option("--state-dir <dir>", `keys and state (default ${DEFAULT_AGENT_STATE_DIR})`)
    .option("--controller <url>", "controller API URL (https://host:8080), needed to enroll")
    .option("--ca-hash <sha256:hex>", "pin of the controller's CA, printed by `weft keys create`; required for an https controller")
    .option("--join-key-file <file>", "read the join key for the first enrollment from a file (mode 0600), or set $WEFT_JOIN_KEY; optional with --cloud when an enrollment policy admits the instance")
    .option("--join-key <key>", "the join key itself: avoid, any local user can read a process's arguments (use --join-key-file or $WEFT_JOIN_KEY)")
    .option("--cloud <provider>", `${METADATA_PROVIDERS.join(" | ")}: present this instance's identity from the cloud's metadata service at enrollment`)
    .option("--metadata-endpoint <url>", "base URL of the metadata service (default the cloud's link-local one)")
    .option("--cloud-audience <aud>", "gcp: audience of the identity token, the controller's inventory.instanceIdentity.gcp.audience (default the origin of --controller)")
    .option("--name <name>", "node name (default: host name)")
    .option("--site <site>", "site: the network this host shares private addresses with (default: what its join key, enrollment policy or instance network says)")
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
    .option("--flow-table-entries <n>", "flows tracked at once: sizes the eBPF tables that grow with traffic, ~450 B of kernel memory per flow, when they are created (default 65536)")
    .option("--metrics-listen <host:port>", "Prometheus /metrics endpoint (default 127.0.0.1:9464; '' turns it off)")
    .option("--spiffe-socket <path>", "the SPIFFE Workload API's unix socket (default /run/weft/workload-api.sock; '' turns it off)")
    .option("--spiffe-host-uid <uid>", "a uid whose host processes get the node's identity from the Workload API (repeatable; default 0)", (v: string, all: string[]) => [...all, v], [])
    .option("--flow-interval <seconds>", "flow records per identity pair every this many seconds (default 10)")
    .option("--flow-log-file <file>", "append flow records as JSON lines to this file")
    .option("--otlp-endpoint <url>", "export flow records as OpenTelemetry logs to this OTLP/HTTP receiver (http://collector:4318)")
    .option("--no-gateway-snat", "as its site's gateway, forward without masquerading (the site's router routes the overlay back)")
    .option("--no-services", "no service load balancing, health checks or DNS on this host")
    .option("--service-cgroup <dir>", "cgroup v2 directory whose processes' connections to service VIPs are balanced (default: the whole host)")
    .option("--dns-listen <where>", "DNS for service, node and workload names: overlay (default, port 53 on the overlay address), ip:port, or '' (off)")
    .option("--dns-upstream <ip[:port]>", "resolver for other names (repeatable; default the nameservers in /etc/resolv.conf)", (v: string, all: string[]) => [...all, v], [])
    .action(async (f: AgentFlags) => (await commands()).runAgent(f, load));

  agent
    .command("rotate-key")
    .description("rotate this host's WireGuard key: a new key pair here, its public key to every peer through the controller, the old one dropped")
    .option("--state-dir <dir>", `the agent's state directory (default ${DEFAULT_AGENT_STATE_DIR})`)
    .option("--json", "print JSON")
    .action(async (_o: unknown, cmd: Command) => {
      // `weft agent` has --state-dir too, and commander hands it to whichever command declares it first.
      const o = cmd.optsWithGlobals<{ stateDir?: string; json?: boolean }>();
      await (await commands()).runRotateKey({ stateDir: o.stateDir ?? DEFAULT_AGENT_STATE_DIR, json: o.json });
    });
}

/** The installed package's agent service: join, leave, start and stop (see packaging/README.md). */
function registerAgentService(program: Command): void {
  program
    .command("up")
    .description("join this host: write /etc/weft/agent.yaml, start the agent service, wait until online and print the overlay address")
    .option("--controller <url>", "controller API URL (https://host:8080), printed by `weft keys create`")
    .option("--ca-hash <sha256:hex>", "pin of the controller's CA, printed by `weft keys create`")
    .option("--join-key-file <file>", "file holding the join key; copied to /etc/weft/join-key (0600) until the node is enrolled")
    .option("--cloud <provider>", `${METADATA_PROVIDERS.join(" | ")}: join without a key, by this instance's identity`)
    .option("--metadata-endpoint <url>", "base URL of the cloud's metadata service (default: the cloud's link-local one)")
    .option("--name <name>", "node name (default: host name)")
    .option("--site <site>", "site this host shares private addresses with (default 'default')")
    .option("--private-endpoint <ip:port>", "endpoint for peers in the same site (default: default-route address)")
    .option("--public-endpoint <ip:port>", "endpoint reachable from other sites; omit when behind NAT")
    .option("--listen-port <port>", "WireGuard UDP port (default 51820)")
    .option("--mtu <mtu>", "interface MTU (default 1420; 1380 where the underlay is 1460, as on GCP)")
    .option("--timeout <seconds>", "give up waiting for the node to come online after this long", "120")
    .option("--keep-join-key", "keep /etc/weft/join-key after enrolling (for a reusable key)")
    .option("--json", "print {name, nodeId, site, overlayAddress} as JSON")
    .action(async (f: UpFlags) => (await import("./commands/up.js")).runUp(f));

  program
    .command("down")
    .description("leave the overlay: stop and disable the agent, remove its interface, routes, eBPF pins and rules, then its state and config")
    .option("--keep-state", "keep keys, state and config (a later `weft up` rejoins as the same node)")
    .action(async (f: DownFlags) => (await import("./commands/down.js")).runDown(f));

  // `weft service start | stop | restart | status` are subcommands of `weft service` (registerService).
}

/**
 * `weft service`: one name, two jobs that never share a subcommand. Services (issue 15: a VIP and a
 * name for backends in any cloud) through the controller — `apply | list | get | delete`
 * (commands/services.ts); and this host's agent service (the package's systemd unit, or the agent
 * weft runs itself) — `start | stop | restart | status` (commands/service.ts).
 */
function registerService(program: Command): void {
  const service = program
    .command("service")
    .alias("services")
    .description("services (apply | list | get | delete: a VIP and a name for backends in any cloud, balanced at connect time) and this host's agent service (start | stop | restart | status)");
  admin(service.command("apply").description("create or replace the services in a YAML or JSON file"))
    .requiredOption("-f, --file <file>", "service file: one service, a list, or several --- documents")
    .action(async (o: AdminOptions & Json & { file: string }) => (await import("./commands/services.js")).applyServices(o));
  admin(service.command("list").description("list services with their VIP, name and backends' health; --json gives every backend with its site, health, weight and connections")).action(
    async (o: AdminOptions & Json) => (await import("./commands/services.js")).listServices(o),
  );
  admin(service.command("get").description("show one service's backends, or list services").argument("[service]", "<namespace>/<name>")).action(async (ref: string | undefined, o: AdminOptions & Json) =>
    (await import("./commands/services.js")).getService(ref, o),
  );
  admin(service.command("delete").description("delete a service (its VIP is released)").argument("<service>", "<namespace>/<name>")).action(async (ref: string, o: AdminOptions & Json) =>
    (await import("./commands/services.js")).deleteService(ref, o),
  );
  const agentService = "the agent service (systemd's weft-agent.service, or without systemd the agent weft runs itself)";
  service.command("start").description(`start ${agentService}`).action(async () => (await import("./commands/service.js")).runService("start", {}));
  service.command("stop").description(`stop ${agentService}`).action(async () => (await import("./commands/service.js")).runService("stop", {}));
  service
    .command("restart")
    .description(`restart ${agentService}`)
    .option("--if-running", "only when it is running (the package's postinst)")
    .action(async (f: ServiceFlags) => (await import("./commands/service.js")).runService("restart", f));
  service.command("status").description(`whether ${agentService} runs: exit 0 running, 3 stopped`).action(async () => (await import("./commands/service.js")).runService("status", {}));
}

/** Commands that read this host's agent from its state directory. */
function registerHostCommands(program: Command): void {
  program
    .command("status")
    .description("show this host's agent: enrollment, sync state and peers")
    .option("--state-dir <dir>", "agent state directory", DEFAULT_AGENT_STATE_DIR)
    .option("--json", "print JSON")
    .action(async (o: { stateDir: string; json?: boolean }) => (await import("./commands/status.js")).runStatus(o));

  program
    .command("flows")
    .description("flow counters per identity pair on this host (packets, bytes, drops by reason); needs root")
    .option("--state-dir <dir>", "agent state directory", DEFAULT_AGENT_STATE_DIR)
    .option("--pin-dir <dir>", "where the agent pins its eBPF maps (default: from the agent's status)")
    .option("--json", "print JSON")
    .action(async (o: { stateDir: string; pinDir?: string; json?: boolean }) => (await import("./commands/flows.js")).runFlows(o));

  program
    .command("whois")
    .description("who holds an overlay address: node, workload, SPIFFE ID, site, cloud, labels (asks this host's agent)")
    .argument("<address>", "an overlay address, optionally with :port (e.g. a connection's peer)")
    .option("--state-dir <dir>", "agent state directory (its local API socket is agent.sock there)", DEFAULT_AGENT_STATE_DIR)
    .option("--socket <path>", "the agent's local API socket (default <state-dir>/agent.sock)")
    .option("--json", "print JSON")
    .action(async (address: string, o: { stateDir: string; socket?: string; json?: boolean }) => (await import("./commands/whois.js")).runWhois(address, o));
}

/** The options every admin command takes to reach the controller (see commands/admin-client.ts). */
function admin(cmd: Command): Command {
  return cmd
    .option("--api <url>", "controller API URL (default: the local controller's unix socket)")
    .option("--ca-hash <sha256:hex>", "pin of the controller's CA for an https --api (default: $WEFT_CA_HASH, then <controller-state-dir>/tls/ca.crt)")
    .option("--token <token>", "admin token (default: $WEFT_ADMIN_TOKEN, then <controller-state-dir>/admin-token)")
    .option("--controller-state-dir <dir>", "state directory of a local controller", DEFAULT_CONTROLLER_STATE_DIR)
    .option("--json", "print JSON");
}

type Json = { json?: boolean };

/** Admin commands: the controller's REST API. */
function registerAdminCommands(program: Command): void {
  const keys = program.command("keys").description("manage join keys");
  admin(keys.command("create").description("create a join key; its secret is printed once"))
    .option("--reusable", "allow many nodes to enroll with this key", false)
    .option("--ttl <duration>", "lifetime, e.g. 30m, 24h, 7d", "24h")
    .option("--label <key=value...>", "labels granted to nodes enrolled with this key (weft:workload-identities=shop/web grants a workload identity)")
    .option("--site <site>", "the site of every node enrolled with this key (required with --label weft:gateway=true)")
    .option("--description <text>", "what the key is for")
    .option("--require-instance", "the agent must present an instance identity of a running instance in the inventory (implied by any --instance-* flag)", false)
    .option("--instance-provider <provider>", `only instances of this cloud: ${METADATA_PROVIDERS.join(" | ")} (on-prem hosts: a plain key with --site)`)
    .option("--instance-account <id>", "only instances in this AWS account, Azure subscription or GCP project")
    .option("--instance-region <region>", "only instances in this region (Azure: location)")
    .option("--instance-network <id>", "only instances in this network (VPC id, VNet id, GCE network)")
    .option("--instance-tag <key=value...>", "only instances with this tag (repeatable; all must match)")
    .action(async (o: CreateKeyFlags) => (await import("./commands/keys.js")).createKey(o));
  admin(keys.command("list").description("list join keys (never their secrets)")).action(async (o: AdminOptions & Json) => (await import("./commands/keys.js")).listKeys(o));
  admin(keys.command("revoke").description("revoke a join key").argument("<id>", "join key id")).action(async (id: string, o: AdminOptions & Json) => (await import("./commands/keys.js")).revokeKey(id, o));

  const enrollment = program.command("enrollment-policy").description("manage enrollment policies: which inventory instances may join without a join key, with which labels");
  admin(enrollment.command("apply").description("create or replace enrollment policies from a YAML or JSON file, or one from flags"))
    .option("-f, --file <file>", "policy file: one policy, a list, or several --- documents")
    .option("--name <name>", "policy name (without -f)")
    .option("--description <text>", "what the policy is for")
    .option("--provider <provider>", `${METADATA_PROVIDERS.join(" | ")} (required without -f; not onprem: on-prem hosts have no signed instance document and join with a join key)`)
    .option("--account <id>", "only instances in this AWS account, Azure subscription or GCP project")
    .option("--region <region>", "only instances in this region")
    .option("--network <id>", "only instances in this network (VPC id, VNet id, GCE network)")
    .option("--tag <key=value...>", "only instances with this tag (repeatable; all must match)")
    .option("--label <key=value...>", "labels granted to the nodes enrolled through this policy (weft:workload-identities=shop/web grants a workload identity)")
    .option("--site <site>", "the site of the nodes it admits (else their instance's network's site in the inventory config)")
    .action(async (o: AdminOptions & EnrollmentPolicyFlags & Json & { file?: string }) => (await import("./commands/enrollment.js")).applyEnrollmentPolicies(o));
  admin(enrollment.command("get").description("list enrollment policies, or show one").argument("[name]", "policy name")).action(async (name: string | undefined, o: AdminOptions & Json) =>
    (await import("./commands/enrollment.js")).getEnrollmentPolicies(name, o),
  );
  admin(enrollment.command("delete").description("delete an enrollment policy; nodes enrolled through it stay").argument("<name>", "policy name")).action(async (name: string, o: AdminOptions & Json) =>
    (await import("./commands/enrollment.js")).deleteEnrollmentPolicy(name, o),
  );

  const nodes = program.command("nodes").description("list and delete enrolled nodes");
  admin(nodes.command("list").description("list nodes with liveness, handshakes and paths"))
    .option("--paths", "one line per node and peer: path (direct, relay via …) and RTT")
    .action(async (o: AdminOptions & Json & { paths?: boolean }) => (await import("./commands/nodes.js")).listNodes(o));
  admin(nodes.command("get").description("show one node").argument("<node>", "node id or name")).action(async (node: string, o: AdminOptions & Json) => (await import("./commands/nodes.js")).getNode(node, o));
  admin(nodes.command("delete").description("delete a node: it leaves every peer's WireGuard").argument("<node>", "node id or name")).action(async (node: string, o: AdminOptions & Json) =>
    (await import("./commands/nodes.js")).deleteNode(node, o),
  );

  const mesh = program.command("mesh").description("the L7 mesh: export Weft members and policy to Istio, import Istio authorization policy");
  admin(mesh.command("export").description("print Istio WorkloadEntry, ServiceEntry and AuthorizationPolicy documents for the overlay"))
    .option("--format <format>", "output format (istio)", "istio")
    .option("--network <name>", "Istio network name of the overlay", "weft")
    .option("--trust-domain <domain>", "trust domain (default: the one of the nodes' identities, else weft.internal)")
    .option("-o, --output <file>", "write the documents to a file instead of stdout")
    .action(async (o: MeshExportFlags) => (await import("./commands/mesh.js")).meshExport(o));
  admin(mesh.command("import").description("translate Istio AuthorizationPolicy documents into Weft policies and apply them"))
    .requiredOption("-f, --file <file>", "YAML (or JSON) with AuthorizationPolicy documents, --- between them")
    .option("--trust-domain <domain>", "the controller's trust domain (default: the one of the nodes' identities, else weft.internal)")
    .option("--dry-run", "print the Weft policies instead of applying them")
    .action(async (o: MeshImportFlags) => (await import("./commands/mesh.js")).meshImport(o));

  const identities = program.command("identities").description("identities allocated by the controller");
  admin(identities.command("list").description("list identities: number and SPIFFE ID")).action(async (o: AdminOptions & Json) => (await import("./commands/identities.js")).listIdentities(o));

  const inventory = program.command("inventory").description("the controller's cloud inventory: sync it, list it");
  admin(inventory.command("sync").description("sync every configured cloud account now and print what each did")).action(async (o: AdminOptions & Json) => (await import("./commands/inventory.js")).syncInventory(o));
  admin(inventory.command("list").description("list instances (state, bound node, tags), networks, site routes and overlapping CIDRs"))
    .option("--provider <provider>", `only this provider (${CLOUD_PROVIDERS.join(", ")})`)
    .action(async (o: AdminOptions & Json & { provider?: string }) => (await import("./commands/inventory.js")).listInventory(o));

  const policy = program.command("policy").description("manage policies: which identities may reach which, on which ports");
  admin(policy.command("apply").description("create or replace the policies in a YAML or JSON file"))
    .requiredOption("-f, --file <file>", "policy file: one policy, a list, or several --- documents")
    .action(async (o: AdminOptions & Json & { file: string }) => (await import("./commands/policy.js")).applyPolicies(o));
  admin(policy.command("get").description("list policies, or show one").argument("[name]", "policy name")).action(async (name: string | undefined, o: AdminOptions & Json) =>
    (await import("./commands/policy.js")).getPolicies(name, o),
  );
  admin(policy.command("delete").description("delete a policy").argument("<name>", "policy name")).action(async (name: string, o: AdminOptions & Json) => (await import("./commands/policy.js")).deletePolicy(name, o));
}

/**
 * The lab's module, which needs @weft/lab: an optional dependency (the lab lives in the repository's
 * test/ folder), so a build installed without it still runs every other command and says why this
 * one cannot.
 */
async function labModule(): Promise<typeof import("./commands/lab.js")> {
  try {
    return await import("./commands/lab.js");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ERR_MODULE_NOT_FOUND" && e.message.includes("@weft/lab")) {
      throw new UsageError("weft lab: the lab (@weft/lab, an optional dependency) is not installed with this weft; run it from a clone of the repository after `npm ci`", { cause: err });
    }
    throw err;
  }
}

function registerLab(program: Command): void {
  const lab = program
    .command("lab")
    .description("the multi-cloud lab: network namespaces modelling AWS, Azure, GCP and on-prem")
    .option("--prefix <name>", "namespace prefix of the lab", "weft")
    .option("--nat-sites", "the enlarged lab: also branch (masquerade) and cgnat (a random port per destination), aws-2 a relay; give it to every lab command")
    .option("--controllers <n>", "1 (default: ctl, one controller with its embedded NATS) or 3 (ctl-1..3: a nats-server cluster and a controller on each); give it to every lab command");
  const flags = (cmd: Command) => cmd.optsWithGlobals<LabFlags>();

  lab
    .command("up")
    .description("build the lab (safe to run twice)")
    .action(async (_o: unknown, cmd: Command) => (await labModule()).labUpCommand(flags(cmd)));
  lab
    .command("down")
    .description("remove everything the lab made, and nothing else")
    .action(async (_o: unknown, cmd: Command) => (await labModule()).labDownCommand(flags(cmd)));
  lab
    .command("status")
    .description("hosts with their underlay and overlay addresses")
    .option("--json", "print JSON")
    .action(async (o: Json, cmd: Command) => (await labModule()).labStatusCommand(o, flags(cmd)));
  lab
    .command("exec")
    .description("run a command inside a lab host: weft lab exec aws-1 -- wg show")
    .argument("<host>", "aws-1, azure-2, onprem-1, ctl, …")
    .argument("<command...>", "the command and its arguments")
    .action(async (host: string, argv: string[], _o: unknown, cmd: Command) => (await labModule()).labExecCommand(host, argv, flags(cmd)));
  lab
    .command("demo")
    .description("lab + controller + an agent on every host; prints the mesh until Ctrl-C")
    .option("--once", "print the table once the mesh is up, then tear everything down")
    .option("--timeout <seconds>", "how long to wait for the full mesh", "120")
    .action(async (o: { once?: boolean; timeout: string }, cmd: Command) => (await labModule()).labDemoCommand(o, flags(cmd)));
}
