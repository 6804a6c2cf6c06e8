/**
 * Weft on the lab: the controller in the `ctl` namespace and an agent on every
 * host, run as real `weft` processes (the built CLI) with logs under the lab
 * directory. Used by `weft lab demo`, the end-to-end tests and the benchmarks.
 * With `layout.controllers: 3`, a highly available control plane instead: a
 * nats-server and a controller on each of `ctl-1..3` (nats-cluster.ts).
 */
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { agentEntry, checkoutAgentNodeFlags } from "./launcher.js";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, open, readFile, symlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ControllerClient, ControllerFiles } from "@weft/protocol";
import { LabError } from "./errors.js";
import { spawnInHost, labExec } from "./exec.js";
import { LAB_CLOUD_CREDENTIALS, METADATA_ADDRESS, startLabClouds, type RunningClouds } from "./clouds.js";
import { hostCgroup } from "./cgroups.js";
import { hostDir, hostPinDir, labDir } from "./state.js";
import { resolveLabOptions, type LabOptions } from "./options.js";
import { ensureNatsTls, natsNodeFiles, natsServerBinary, natsUrls, renderNatsConf } from "./nats-cluster.js";
import { run } from "./run.js";
import { labTopology, type Controller, type Host } from "./topology.js";

export const CONTROLLER_API_PORT = 8080;
export const CONTROLLER_NATS_PORT = 4222;
export const WIREGUARD_PORT = 51820;

export interface ClusterOptions extends LabOptions {
  /** Path to the built `weft` CLI (default: cli/dist/main.js of this repository). */
  cliPath?: string;
  /**
   * The lab's clouds are simulated (startClouds): agents on cloud hosts present their instance
   * identity from the metadata service, and the controller gets the simulators' test credentials.
   */
  clouds?: boolean;
  /** Extra environment for every process (e.g. WEFT_LOG_LEVEL). */
  env?: Record<string, string>;
}

export interface AgentHandle {
  host: Host;
  /** WireGuard interface name, unique across the machine (the wireguard-go UAPI socket directory is shared). */
  interfaceName: string;
  stateDir: string;
  logPath: string;
  process: ChildProcess | undefined;
}

/** Locate the repository root (the folder whose package.json is named "weft"). */
export function repoRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && /"name":\s*"weft"/.test(safeRead(pkg))) return dir;
    if (dirname(dir) === dir) throw new LabError(`cannot find the Weft repository above ${from}`);
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * The WireGuard interface of a lab host: `<prefix>-<host>` (`weft-aws-1` in the demo's lab).
 * The prefix keeps two labs apart: wireguard-go's UAPI sockets (`/var/run/wireguard/<name>.sock`)
 * live in one directory shared by every namespace, so equal names in two labs would collide.
 */
export function interfaceNameFor(host: string, prefix = "weft"): string {
  const name = `${prefix}-${host}`;
  // Linux allows 15 characters; a long prefix gets a stable hashed name instead of a truncated (colliding) one.
  return name.length <= 15 ? name : `w${createHash("sha256").update(name).digest("hex").slice(0, 14)}`;
}

export class LabCluster {
  readonly opts: ClusterOptions;
  readonly topology;
  readonly cli: string;
  readonly agents = new Map<string, AgentHandle>();
  private controllerProcess: ChildProcess | undefined;
  /** With several controller hosts: each one's controller and nats-server, by host name. */
  private readonly controllerProcesses = new Map<string, ChildProcess>();
  private readonly natsProcesses = new Map<string, ChildProcess>();
  /** The arguments the controller(s) were last started with (a restart after a crash reuses them). */
  private controllerArgs: string[] = [];
  private clouds: RunningClouds | undefined;

  constructor(opts: ClusterOptions = {}) {
    this.opts = opts;
    this.topology = labTopology(resolveLabOptions(opts));
    this.cli = opts.cliPath ?? join(repoRoot(), "cli", "dist", "main.js");
    if (!existsSync(this.cli)) throw new LabError(`the weft CLI is not built at ${this.cli}; run \`npm run build\``);
  }

  get controllerStateDir(): string {
    return this.controllerStateDirOf(this.topology.controller.name);
  }

  /** The state directory of the controller on controller host `name` (`ctl`, `ctl-1` …). */
  controllerStateDirOf(name: string): string {
    return join(hostDir(this.opts, this.controllerHost(name).name), "controller");
  }

  /** The controller's API: HTTPS with its own CA, which agents pin with `--ca-hash`. */
  get controllerUrl(): string {
    return this.controllerUrlOf(this.topology.controller.name);
  }

  controllerUrlOf(name: string): string {
    return `https://${this.controllerHost(name).address}:${CONTROLLER_API_PORT}`;
  }

  /** True with several controller hosts (`layout.controllers: 3`). */
  get highlyAvailable(): boolean {
    return this.topology.controllers.length > 1;
  }

  /** The NATS URLs of the cluster (highly available), each `tls://<ctl-i>:4222`. */
  get natsUrls(): string[] {
    return natsUrls(this.topology.controllers);
  }

  /** The log of the controller on `name` (`controller.log` with one controller host). */
  controllerLogPath(name = this.topology.controller.name): string {
    return join(this.logDir, this.highlyAvailable ? `controller-${this.controllerHost(name).name}.log` : "controller.log");
  }

  /** The pin of the controller's CA, from `<controller state dir>/tls/ca.hash` (written at every controller start). */
  async controllerCaHash(): Promise<string> {
    const path = join(this.controllerStateDir, ControllerFiles.tlsDir, ControllerFiles.caHash);
    try {
      return (await readFile(path, "utf8")).trim();
    } catch (err) {
      throw new LabError(`cannot read the controller's CA hash at ${path} (has the controller started?): ${(err as Error).message}`);
    }
  }

  get logDir(): string {
    return join(labDir(this.opts), "logs");
  }

  /** Admin client over the controller's unix socket (reachable from the root namespace); `timeoutMs`: the client's per-request idle limit. */
  async client(o: { timeoutMs?: number } = {}): Promise<ControllerClient> {
    return this.clientOf(this.topology.controller.name, o);
  }

  /** Admin client of the controller on controller host `name`. */
  async clientOf(name: string, o: { timeoutMs?: number } = {}): Promise<ControllerClient> {
    const dir = this.controllerStateDirOf(name);
    const token = (await readFile(join(dir, ControllerFiles.adminToken), "utf8")).trim();
    return new ControllerClient({ socketPath: join(dir, ControllerFiles.apiSocket), adminToken: token, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) });
  }

  /** PID of the running controller process (`ip netns exec` execs in place: the node process itself). */
  get controllerPid(): number | undefined {
    const p = this.controllerProcess;
    return p && p.exitCode === null && p.signalCode === null ? p.pid : undefined;
  }

  /**
   * PID of the controller's embedded nats-server, from its pid file, when that process is a
   * nats-server still running (a SIGKILLed controller leaves it running: it is a child, not a
   * process group member that dies with it).
   */
  async natsServerPid(): Promise<number | undefined> {
    const pid = Number.parseInt((await readFile(join(this.controllerStateDir, "nats", "nats-server.pid"), "utf8").catch(() => "")).trim(), 10);
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    return cmdline.includes("nats-server") ? pid : undefined;
  }

  /**
   * Starts the control plane: the controller with its embedded NATS, or (several controller
   * hosts) a nats-server on each, clustered, and a controller on each. With no arguments after a
   * stop, with the arguments of its last start; they go to every controller, also when one is
   * started again (startControllerOn).
   */
  async startController(extraArgs?: string[]): Promise<void> {
    if (this.highlyAvailable) return this.startHighlyAvailable(extraArgs ?? this.controllerArgs);
    if (this.controllerProcess && this.controllerProcess.exitCode === null) return;
    this.controllerArgs = extraArgs ?? this.controllerArgs;
    this.controllerProcess = await this.spawn(this.topology.controller.name, "controller", [
      "controller",
      "--state-dir",
      this.controllerStateDir,
      "--api-port",
      String(CONTROLLER_API_PORT),
      "--nats-port",
      String(CONTROLLER_NATS_PORT),
      ...this.controllerArgs,
    ]);
    await waitFor(`controller API on ${this.controllerStateDir}/api.sock`, 60_000, async () => {
      if (this.controllerProcess?.exitCode !== null) throw new LabError(`controller exited with ${this.controllerProcess?.exitCode}; see ${join(this.logDir, "controller.log")}`);
      if (!existsSync(join(this.controllerStateDir, ControllerFiles.apiSocket))) return false;
      const res = await (await this.client()).raw("GET", "/healthz").catch(() => undefined);
      return res?.status === 200;
    });
  }

  /** Starts the cloud simulators in the gateways (every cloud host an instance); stopped by stopAll. */
  async startClouds(): Promise<RunningClouds> {
    this.clouds ??= await startLabClouds(this.opts, join(repoRoot(), "cloud-sim", "dist", "main.js"), this.controllerUrl);
    return this.clouds;
  }

  /** Stop the controller (SIGTERM, or SIGKILL to simulate a crash); with several, every controller and nats-server. */
  async stopController(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await stopProcess(this.controllerProcess, signal);
    this.controllerProcess = undefined;
    await Promise.all([...this.controllerProcesses.keys()].map((n) => this.stopControllerOn(n, signal)));
    await Promise.all([...this.natsProcesses.keys()].map((n) => this.stopNats(n, signal)));
  }

  private controllerHost(name: string): Controller {
    const c = this.topology.controllers.find((x) => x.name === name);
    if (!c) throw new LabError(`no controller host ${name}; controller hosts: ${this.topology.controllers.map((x) => x.name).join(", ")}`);
    return c;
  }

  /**
   * The highly available control plane. The operator's keys are made once on ctl-1 (`weft
   * nats-config`) and shared by the others through a link to that directory (with its revocation
   * list); the API's CA, the SPIFFE CA and JWT key and the admin and metrics tokens are copied
   * from ctl-1 once its controller made them (README.md, "What controllers share"), so agents pin
   * one CA and workloads get one trust domain whichever controller they reach.
   */
  private async startHighlyAvailable(extraArgs: string[]): Promise<void> {
    this.controllerArgs = extraArgs;
    const [first, ...others] = this.topology.controllers as [Controller, ...Controller[]];
    const authority = join(this.controllerStateDirOf(first.name), "authority");
    await mkdir(this.controllerStateDirOf(first.name), { recursive: true, mode: 0o700 });
    const fragment = (await run([process.execPath, resolve(this.cli), "nats-config", "--state-dir", this.controllerStateDirOf(first.name)])).stdout;
    for (const c of others) {
      await mkdir(this.controllerStateDirOf(c.name), { recursive: true, mode: 0o700 });
      if (!existsSync(join(this.controllerStateDirOf(c.name), "authority"))) await symlink(authority, join(this.controllerStateDirOf(c.name), "authority"));
    }
    const nodes = this.topology.controllers.map((c) => ({ controller: c, files: natsNodeFiles(hostDir(this.opts, c.name)) }));
    const caFile = await ensureNatsTls(join(labDir(this.opts), "nats-ca"), nodes);
    for (const { controller, files } of nodes) {
      await mkdir(files.storeDir, { recursive: true });
      await writeFile(files.conf, renderNatsConf(controller, this.topology.controllers, files, fragment));
      await writeFile(
        join(hostDir(this.opts, controller.name), "controller.yaml"),
        `${JSON.stringify({ nats: { urls: this.natsUrls, replicas: this.topology.controllers.length, caFile } }, null, 2)}
`,
      );
    }
    await Promise.all(this.topology.controllers.map((c) => this.startNats(c.name)));
    await this.startControllerOn(first.name);
    const firstDir = this.controllerStateDirOf(first.name);
    // What README.md's "What controllers share" lists: the API's CA, the SPIFFE CA and JWT key, the tokens.
    const shared = [join(ControllerFiles.tlsDir, ControllerFiles.caCert), join(ControllerFiles.tlsDir, "ca.key"), join("spiffe", "ca.crt"), join("spiffe", "ca.key"), join("spiffe", "jwt.key"), ControllerFiles.adminToken, "metrics-token"];
    for (const c of others) {
      const dir = this.controllerStateDirOf(c.name);
      for (const f of shared) {
        if (existsSync(join(dir, f)) || !existsSync(join(firstDir, f))) continue;
        await mkdir(dirname(join(dir, f)), { recursive: true, mode: 0o700 });
        await copyFile(join(firstDir, f), join(dir, f));
      }
    }
    await Promise.all(others.map((c) => this.startControllerOn(c.name)));
  }

  /** Starts (again) the nats-server of controller host `name` and waits until it is ready. */
  async startNats(name: string): Promise<void> {
    const running = this.natsProcesses.get(name);
    if (running && running.exitCode === null && running.signalCode === null) return;
    const files = natsNodeFiles(hostDir(this.opts, this.controllerHost(name).name));
    const logName = `nats-${name}`;
    const logPath = join(this.logDir, `${logName}.log`);
    const before = existsSync(logPath) ? (await readFile(logPath, "utf8")).length : 0;
    const child = await this.spawnRaw(name, logName, [natsServerBinary(repoRoot()), "-c", files.conf]);
    this.natsProcesses.set(name, child);
    await waitFor(`nats-server on ${name}`, 30_000, async () => {
      if (child.exitCode !== null) throw new LabError(`nats-server on ${name} exited with ${child.exitCode}; see ${logPath}`);
      return (await readFile(logPath, "utf8")).slice(before).includes("Server is ready");
    });
  }

  /** Stops (SIGKILL by default: a crash) the nats-server of controller host `name`. */
  async stopNats(name: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await stopProcess(this.natsProcesses.get(name), signal);
    this.natsProcesses.delete(name);
  }

  /** Starts (again) the controller on controller host `name` and waits for its API. */
  async startControllerOn(name: string): Promise<void> {
    const running = this.controllerProcesses.get(name);
    if (running && running.exitCode === null && running.signalCode === null) return;
    const stateDir = this.controllerStateDirOf(name);
    const logPath = this.controllerLogPath(name);
    const child = await this.spawn(name, `controller-${name}`, [
      "controller",
      "--config",
      join(hostDir(this.opts, name), "controller.yaml"),
      "--state-dir",
      stateDir,
      "--api-port",
      String(CONTROLLER_API_PORT),
      ...this.controllerArgs,
    ]);
    this.controllerProcesses.set(name, child);
    await waitFor(`controller API on ${name}`, 120_000, async () => {
      if (child.exitCode !== null) throw new LabError(`controller on ${name} exited with ${child.exitCode}; see ${logPath}`);
      if (!existsSync(join(stateDir, ControllerFiles.apiSocket))) return false;
      const res = await (await this.clientOf(name)).raw("GET", "/healthz").catch(() => undefined);
      return res?.status === 200;
    });
  }

  /** Stops (SIGKILL by default: a crash) the controller on controller host `name`. */
  async stopControllerOn(name: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await stopProcess(this.controllerProcesses.get(name), signal);
    this.controllerProcesses.delete(name);
  }

  /** The SPIFFE Workload API socket of the agent on `hostName` (one per host: the lab's hosts share a filesystem). */
  spiffeSocket(hostName: string): string {
    return join(hostDir(this.opts, hostName), "spiffe", "api.sock");
  }

  /** Start (or restart) the agent on `hostName`; `joinKey` is needed only for the first enrollment. */
  async startAgent(hostName: string, joinKey?: string, extraArgs: string[] = []): Promise<AgentHandle> {
    const host = this.topology.hosts.find((h) => h.name === hostName);
    if (!host) throw new LabError(`no lab host ${hostName}; hosts: ${this.topology.hosts.map((h) => h.name).join(", ")}`);
    const existing = this.agents.get(hostName);
    if (existing?.process && existing.process.exitCode === null) return existing;
    const stateDir = join(hostDir(this.opts, hostName), "agent");
    const interfaceName = interfaceNameFor(hostName, resolveLabOptions(this.opts).prefix);
    const args = [
      "agent",
      "--state-dir",
      stateDir,
      "--controller",
      this.controllerUrl,
      "--ca-hash",
      await this.controllerCaHash(),
      "--name",
      hostName,
      "--site",
      host.site,
      "--interface",
      interfaceName,
      "--listen-port",
      String(WIREGUARD_PORT),
      "--private-endpoint",
      `${host.privateAddress}:${WIREGUARD_PORT}`,
      ...(host.publicAddress ? ["--public-endpoint", `${host.publicAddress}:${WIREGUARD_PORT}`] : []),
      "--bpf-pin-dir",
      hostPinDir(this.opts, hostName),
      // Services: the host's own cgroup (never the machine's root cgroup: every lab shares its kernel).
      ...(hostCgroup(this.opts, hostName) ? ["--service-cgroup", hostCgroup(this.opts, hostName)!] : ["--no-services"]),
      "--spiffe-socket",
      this.spiffeSocket(hostName),
      ...host.workloads.flatMap((w) => ["--workload", `${w.name}=${w.namespace}/${w.serviceAccount}@${w.netns}`]),
      ...(this.opts.clouds && this.topology.sites.find((s) => s.name === host.site)?.kind === "cloud" ? ["--cloud", host.site, "--metadata-endpoint", `http://${METADATA_ADDRESS}`] : []),
      ...extraArgs,
    ];
    // The join key goes in a file only root reads, never on the command line (/proc/<pid>/cmdline is world-readable).
    if (joinKey) {
      await mkdir(hostDir(this.opts, hostName), { recursive: true, mode: 0o700 });
      const keyFile = join(hostDir(this.opts, hostName), "join-key");
      await writeFile(keyFile, `${joinKey}\n`, { mode: 0o600 });
      args.push("--join-key-file", keyFile);
    }
    const handle: AgentHandle = {
      host,
      interfaceName,
      stateDir,
      logPath: join(this.logDir, `${hostName}.log`),
      // The agent itself stays out of the host's cgroup (its own connections are not the host's workloads').
      // As the package's launcher runs `weft agent`: its node flags (V8 tuned for memory) and, from a
      // package's bundle, the agent's own entry (its bundle with the code cache).
      process: await this.spawn(hostName, hostName, args, { hostMounts: true, cgroup: false, nodeFlags: checkoutAgentNodeFlags(repoRoot()), script: agentEntry(this.cli) }),
    };
    this.agents.set(hostName, handle);
    return handle;
  }

  async stopAgent(hostName: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const handle = this.agents.get(hostName);
    await stopProcess(handle?.process, signal);
    if (handle) handle.process = undefined;
  }

  /** Latest handshake (epoch seconds, 0 = never) per peer public key on a host's interface. */
  async handshakes(hostName: string): Promise<Map<string, number>> {
    const res = await labExec(this.opts, hostName, ["wg", "show", interfaceNameFor(hostName, resolveLabOptions(this.opts).prefix), "latest-handshakes"]);
    const out = new Map<string, number>();
    if (res.exitCode !== 0) return out;
    for (const line of res.stdout.trim().split("\n")) {
      const [key, ts] = line.split("\t");
      if (key && ts) out.set(key, Number(ts));
    }
    return out;
  }

  /** Wait until every running agent's host has a handshake younger than 3 minutes with `peers` peers each. */
  async waitForFullMesh(timeoutMs = 60_000): Promise<void> {
    const hosts = [...this.agents.keys()];
    await waitFor(`a handshake between every pair of ${hosts.length} hosts`, timeoutMs, async () => {
      const now = Date.now() / 1000;
      for (const h of hosts) {
        const hs = await this.handshakes(h);
        const fresh = [...hs.values()].filter((t) => t > 0 && now - t < 180).length;
        if (hs.size !== hosts.length - 1 || fresh !== hosts.length - 1) return false;
      }
      return true;
    });
  }

  /** Stop every agent and the controller. WireGuard interfaces die with the lab's namespaces. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((h) => this.stopAgent(h)));
    await this.stopController();
    await this.clouds?.stop();
    this.clouds = undefined;
  }

  /** Runs `weft <args>` (`script`: what runs it, default the lab's `weft`) in a host. */
  private async spawn(host: string, logName: string, args: string[], o: { hostMounts?: boolean; cgroup?: boolean; nodeFlags?: string[]; script?: string } = {}): Promise<ChildProcess> {
    return this.spawnRaw(host, logName, [process.execPath, ...(o.nodeFlags ?? []), resolve(o.script ?? this.cli), ...args], o);
  }

  private async spawnRaw(host: string, logName: string, argv: string[], o: { hostMounts?: boolean; cgroup?: boolean } = {}): Promise<ChildProcess> {
    await mkdir(this.logDir, { recursive: true });
    const log = await open(join(this.logDir, `${logName}.log`), "a");
    const child = spawnInHost(this.opts, host, argv, {
      stdio: ["ignore", log.fd, log.fd],
      env: { ...process.env, PATH: labPath(process.env.PATH), ...(this.opts.clouds ? LAB_CLOUD_CREDENTIALS : {}), ...this.opts.env },
      ...(o.hostMounts ? { hostMounts: true } : {}),
      ...(o.cgroup === false ? { cgroup: false } : {}),
    });
    child.on("exit", () => void log.close().catch(() => undefined));
    child.on("error", () => void log.close().catch(() => undefined));
    return child;
  }
}

/**
 * PATH for the lab's processes: `<repo>/.weft/bin` first when scripts/wireguard-go.sh built the
 * current wireguard-go there (setup.sh does), so agents run it rather than Debian's 2022 one,
 * which stays the fallback. `env.PATH` in ClusterOptions overrides this.
 */
export function labPath(path = "/usr/sbin:/usr/bin:/sbin:/bin"): string {
  const bin = join(repoRoot(), ".weft", "bin");
  return existsSync(join(bin, "wireguard-go")) ? `${bin}:${path}` : path;
}

export async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill(signal);
  // A stopped process (SIGSTOP: a frozen controller in an outage test, or by hand in the demo) only acts on the signal once continued.
  if (signal !== "SIGKILL") child.kill("SIGCONT");
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
}

export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof LabError) throw err;
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new LabError(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr instanceof Error ? ` (last error: ${lastErr.message})` : ""}`);
}
