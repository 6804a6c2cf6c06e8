/**
 * Agent footprint benchmark: one real `weft agent` in steady state with 100 peers and a policy of
 * 1,000 rules, against a real controller (embedded nats-server) on loopback.
 *
 * Everything runs in one network namespace of its own (`wab-agent`, created here and removed at
 * the end): the benchmark re-executes itself inside it with `nsenter --net`, so the controller, the
 * agent and the enrollments talk over that namespace's loopback and the agent's WireGuard
 * interface (`wab0`) and eBPF programs live there; pins go to /sys/fs/bpf/wab-agent (removed).
 *
 *   1. controller up; 100 peers enrolled through the enrollment API (real peer records: their own
 *      WireGuard and NATS keys, a public endpoint nobody answers on), all labelled role=peer;
 *   2. four policies of 250 rules each: role=peer → role=bench, one TCP port per rule (every other
 *      port, so that no two rules merge into one port interval);
 *   3. the agent started (role=bench) and waited for: NATS connected, 101 peers applied, the policy;
 *   4. settle (`--settle`, default 20 s), then over an idle minute (`--idle`, default 60 s): RSS
 *      (VmRSS, RssAnon, VmHWM from /proc/<pid>/status), PSS and where the resident memory is
 *      (/proc/<pid>/smaps by kind of mapping, src/smaps.ts) and CPU (utime + stime from
 *      /proc/<pid>/stat over the minute); then `weft status` timed (`--runs`, default 10).
 *
 * Each build's agent runs the way its package runs it: with the node flags its launcher
 * (`packaging/bin/weft`, /usr/bin/weft) gives `weft agent` and the runtime settings of its unit
 * (`packaging/systemd/weft-agent.service`: `Environment=` NODE_OPTIONS, MALLOC_* and
 * GLIBC_TUNABLES), both read from that build's checkout. `--node-flags "<flags>"` adds node flags
 * to this build's agent, to compare launchers. `--baseline <path/to/cli/dist/main.js>` runs the same
 * scenario with another build first (e.g. a checkout of the current release) and prints both side
 * by side, with a bare `node` (the runtime's floor) beside them. `--bundle` runs the agent and
 * `weft status` of each checkout from its package bundle (packaging/bundle.mjs, in the package's
 * layout: src/launcher.ts), as a package installs them. Needs root. Writes
 * bench-results/agent-<timestamp>.json and agent-latest.json.
 *
 *   sudo npm run bench -- agent [--baseline /path/to/release/cli/dist/main.js]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createUser } from "@nats-io/nkeys";
import { ControllerClient, ControllerFiles, generateKeyPair, type PolicyInput } from "@weft/protocol";
import { agentEntry, checkoutAgentNodeFlags } from "@weft/lab";
import { describeMachine } from "./src/report.js";
import { bundleCheckout, unitRuntimeEnv } from "./src/launcher.js";
import { formatSmaps, summarizeSmaps, type SmapsSummary } from "./src/smaps.js";
import { median, percentile } from "./src/stats.js";

const say = (line: string) => process.stderr.write(`${line}\n`);
const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const NETNS = "wab-agent";
const PIN_DIR = "/sys/fs/bpf/wab-agent";
const IFACE = "wab0";
/** The agent's private endpoint address, on the namespace's lo. */
const UNDERLAY_ADDRESS = "10.255.0.1";
const API = "https://127.0.0.1:8080";
const PEERS = 100;
const RULES_PER_POLICY = 250;
const POLICIES = 4;
const IN_NETNS = "WEFT_BENCH_AGENT_NETNS";

interface Settings {
  cli: string;
  baseline: string | undefined;
  settleS: number;
  idleS: number;
  runs: number;
  out: string;
  /** Extra node flags for the agent's process (e.g. V8 heap flags), to compare launchers. */
  nodeFlags: string[];
  /** Run the agent and `weft status` from each checkout's package bundle, not from its cli/dist. */
  bundle: boolean;
}

/** The checkout holding `cli` (<checkout>/cli/dist/main.js). */
const checkoutOf = (cli: string) => resolve(dirname(cli), "..", "..");

/** The unit's runtime settings in a checkout, or none. */
function launcherEnv(checkout: string): Record<string, string> {
  const unit = join(checkout, "packaging", "systemd", "weft-agent.service");
  return existsSync(unit) ? unitRuntimeEnv(readFileSync(unit, "utf8")) : {};
}

export interface AgentFigures {
  cli: string;
  /** What ran the agent and `weft status`: "bundle" (the package's, packaging/bundle.mjs) or "dist" (cli/dist). */
  build: "bundle" | "dist";
  nodeFlags: string[];
  /** The runtime settings from the build's unit the agent ran with. */
  env: Record<string, string>;
  peersApplied: number;
  policyEntries: number;
  /** /proc/<pid>/status at the end of the idle minute, MB. */
  rssMb: number;
  rssAnonMb: number;
  hwmMb: number;
  /** Proportional set size (shared pages split among the processes mapping them), MB. */
  pssMb: number;
  /** /proc/<pid>/smaps summed by kind of mapping, at the end of the idle minute. */
  memory: SmapsSummary;
  /** utime + stime over the idle minute, as a share of one CPU (percent). */
  idleCpuPercent: number;
  /** wireguard-go's RSS (its own process; not the agent's), MB. */
  wireguardGoRssMb: number | undefined;
  /** Kernel memory of the eBPF maps the agent pinned (bpftool's bytes_memlock summed; charged to the agent's cgroup, not its RSS), MB. */
  bpfMapsMb: number;
  /** `weft status` wall times, and `node -e 0`'s median interleaved with them (Node's own start). */
  status: { runs: number; medianMs: number; p90Ms: number; minMs: number; nodeMedianMs: number };
  startToSyncedMs: number;
}

function parseSettings(): Settings {
  const { values } = parseArgs({
    options: {
      cli: { type: "string" },
      baseline: { type: "string" },
      settle: { type: "string", default: "20" },
      idle: { type: "string", default: "60" },
      runs: { type: "string", default: "10" },
      out: { type: "string" },
      "node-flags": { type: "string", default: "" },
      bundle: { type: "boolean", default: false },
    },
  });
  const cli = resolve(values.cli ?? join(repo, "cli", "dist", "main.js"));
  for (const c of [cli, values.baseline]) if (c !== undefined && !existsSync(c)) throw new Error(`no weft CLI at ${c}; run npm run build`);
  return {
    cli,
    baseline: values.baseline === undefined ? undefined : resolve(values.baseline),
    settleS: Number(values.settle),
    idleS: Number(values.idle),
    runs: Number(values.runs),
    out: resolve(values.out ?? join(repo, "bench-results")),
    nodeFlags: values["node-flags"].split(/\s+/).filter(Boolean),
    bundle: values.bundle,
  };
}

const run = (argv: string[]) => spawnSync(argv[0] as string, argv.slice(1), { encoding: "utf8" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Outside the namespace: create it, run this benchmark inside it, remove it (also on failure). */
function runInNamespace(): number {
  run(["ip", "netns", "del", NETNS]);
  const add = run(["ip", "netns", "add", NETNS]);
  if (add.status !== 0) throw new Error(`ip netns add ${NETNS}: ${add.stderr}`);
  try {
    run(["ip", "-n", NETNS, "link", "set", "lo", "up"]);
    // The agent's endpoint: an address of its own in the namespace, on its lo (the controller refuses loopback addresses).
    const addr = run(["ip", "-n", NETNS, "addr", "add", `${UNDERLAY_ADDRESS}/32`, "dev", "lo"]);
    if (addr.status !== 0) throw new Error(`ip -n ${NETNS} addr add ${UNDERLAY_ADDRESS}/32 dev lo: ${addr.stderr}`);
    const child = spawnSync("nsenter", [`--net=/run/netns/${NETNS}`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit", env: { ...process.env, [IN_NETNS]: "1" } });
    return child.status ?? 1;
  } finally {
    run(["ip", "netns", "del", NETNS]);
    run(["rm", "-rf", PIN_DIR]);
  }
}

function procStatusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]);
}

/** utime + stime of a process, in clock ticks (100 per second on Linux). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** The wireguard-go process in this benchmark's network namespace (others may run on the machine). */
function wireguardGoHere(): number | undefined {
  const here = readlinkSync("/proc/self/ns/net");
  const pids = run(["pgrep", "-x", "wireguard-go"]).stdout.trim().split("\n").filter(Boolean).map(Number);
  return pids.find((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) === here;
    } catch {
      return false;
    }
  });
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(200);
  }
}

/** POST /v1/enroll with the controller's CA (the bench's own controller on loopback). */
function enroll(ca: string, body: unknown): Promise<void> {
  return new Promise((ok, fail) => {
    const req = request(`${API}/v1/enroll`, { method: "POST", ca, checkServerIdentity: () => undefined, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => (res.statusCode === 200 || res.statusCode === 201 ? ok() : fail(new Error(`enroll: HTTP ${res.statusCode}: ${text.slice(0, 300)}`))));
    });
    req.on("error", fail);
    req.end(JSON.stringify(body));
  });
}

function policies(): PolicyInput[] {
  return Array.from({ length: POLICIES }, (_, p) => ({
    name: `bench-${p}`,
    rules: Array.from({ length: RULES_PER_POLICY }, (_, r) => ({
      action: "allow" as const,
      from: [{ labels: { role: "peer" } }],
      to: [{ labels: { role: "bench" } }],
      // Every other port: adjacent ones would merge into one interval (the controller compiles port intervals).
      ports: [{ protocol: "tcp", port: 1000 + 2 * (p * RULES_PER_POLICY + r) }],
    })),
  }));
}

async function spawnLogged(argv: string[], logPath: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const log = await open(logPath, "a");
  const child = spawn(process.execPath, argv, { stdio: ["ignore", log.fd, log.fd], env: { ...process.env, WEFT_LOG_LEVEL: "info", ...env } });
  child.on("exit", () => void log.close().catch(() => undefined));
  return child;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** One full scenario with one build of the CLI. */
async function measure(cli: string, s: Settings): Promise<AgentFigures> {
  const dir = await mkdtemp(join(tmpdir(), "weft-bench-agent-"));
  let controller: ChildProcess | undefined;
  let agent: ChildProcess | undefined;
  try {
    const ctlDir = join(dir, "controller");
    say(`==> ${cli}: controller on ${API}`);
    // 100 enrolments from one address: more than the enrolment routes' default per-address rate
    // limit allows. Raised for a build that has the limit (an older one's strict config refuses the key).
    const ctlConfig = join(dir, "controller.yaml");
    const limited = readFileSync(join(checkoutOf(cli), "controller", "dist", "config.js"), "utf8").includes("rateLimit");
    await writeFile(ctlConfig, limited ? "api:\n  rateLimit:\n    max: 1000\n" : "{}\n");
    controller = await spawnLogged([cli, "controller", "--config", ctlConfig, "--state-dir", ctlDir, "--api-host", "127.0.0.1", "--api-port", "8080", "--nats-host", "127.0.0.1", "--nats-port", "4222"], join(dir, "controller.log"));
    const client = await waitFor("the controller's API", 60_000, async () => {
      if (controller?.exitCode !== null) throw new Error(`controller exited; see ${dir}/controller.log`);
      const c = new ControllerClient({ socketPath: join(ctlDir, ControllerFiles.apiSocket), adminToken: (await readFile(join(ctlDir, ControllerFiles.adminToken), "utf8")).trim() });
      return (await c.raw("GET", "/healthz")).status === 200 ? c : undefined;
    });
    const ca = await readFile(join(ctlDir, ControllerFiles.tlsDir, ControllerFiles.caCert), "utf8");
    const caHash = (await readFile(join(ctlDir, ControllerFiles.tlsDir, ControllerFiles.caHash), "utf8")).trim();
    const peerKey = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "agent bench peers", labels: { role: "peer", "weft:namespace": "bench", "weft:serviceaccount": "peer" } });
    const agentKey = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "agent bench", labels: { role: "bench", "weft:namespace": "bench", "weft:serviceaccount": "agent" } });
    say(`==> enrolling ${PEERS} peers`);
    for (let i = 0; i < PEERS; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, PEERS - i) }, (_, j) => {
          const n = i + j;
          return enroll(ca, {
            version: 1,
            joinKey: peerKey.key,
            name: `peer-${n}`,
            site: `site-${n % 4}`,
            wireguardPublicKey: generateKeyPair().publicKey,
            natsPublicKey: createUser().getPublicKey(),
            listenPort: 51820,
            endpoints: { public: `198.51.100.${1 + (n % 250)}:${51820 + Math.floor(n / 250)}` },
          });
        }),
      );
    }
    say(`==> ${POLICIES} policies of ${RULES_PER_POLICY} rules`);
    for (const p of policies()) await client.applyPolicy(p);

    const stateDir = join(dir, "agent");
    const statusPath = join(stateDir, "status.json");
    // The agent (and `weft status`) as installed: the package's bundle, when asked for, and the unit's runtime settings.
    const weft = s.bundle ? bundleCheckout(checkoutOf(cli), join(dir, "package")) : cli;
    const env = launcherEnv(checkoutOf(cli));
    const nodeFlags = [...checkoutAgentNodeFlags(checkoutOf(cli)), ...s.nodeFlags];
    say(`    agent: ${weft}; node flags (its launcher${s.nodeFlags.length ? " and --node-flags" : ""}): ${nodeFlags.join(" ") || "none"}; environment (its unit): ${JSON.stringify(env)}`);
    const t0 = Date.now();
    agent = await spawnLogged(
      [...nodeFlags, agentEntry(weft), "agent", "--state-dir", stateDir, "--controller", API, "--ca-hash", caHash, "--join-key", agentKey.key, "--name", "bench", "--site", "bench",
        "--interface", IFACE, "--listen-port", "51820", "--private-endpoint", `${UNDERLAY_ADDRESS}:51820`, "--public-endpoint", "198.51.100.254:51820",
        "--bpf-pin-dir", PIN_DIR, "--spiffe-socket", join(dir, "spiffe.sock"), "--metrics-listen", "127.0.0.1:9464"],
      join(dir, "agent.log"),
      env,
    );
    const synced = await waitFor("the agent: NATS connected, 101 peers and 1,000 policy entries applied", 120_000, async () => {
      if (agent?.exitCode !== null) throw new Error(`agent exited; see ${dir}/agent.log`);
      const st = JSON.parse(await readFile(statusPath, "utf8")) as { nats: string; stale: boolean; peers: number; policyEntries: number };
      return st.nats === "connected" && !st.stale && st.peers === PEERS + 1 && st.policyEntries >= POLICIES * RULES_PER_POLICY ? st : undefined;
    });
    const startToSyncedMs = Date.now() - t0;
    say(`    synced in ${startToSyncedMs} ms: ${synced.peers} peers, ${synced.policyEntries} policy entries; settling ${s.settleS} s, then an idle minute`);
    const pid = agent.pid as number;
    await sleep(s.settleS * 1000);
    const ticks0 = cpuTicks(pid);
    const idle0 = Date.now();
    await sleep(s.idleS * 1000);
    const idleCpuPercent = ((cpuTicks(pid) - ticks0) / 100 / ((Date.now() - idle0) / 1000)) * 100;
    const rssMb = procStatusKb(pid, "VmRSS") / 1024;
    const rssAnonMb = procStatusKb(pid, "RssAnon") / 1024;
    const hwmMb = procStatusKb(pid, "VmHWM") / 1024;
    const memory = summarizeSmaps(readFileSync(`/proc/${pid}/smaps`, "utf8"), readlinkSync(`/proc/${pid}/exe`));
    const wg = wireguardGoHere();
    const wireguardGoRssMb = wg === undefined ? undefined : procStatusKb(wg, "VmRSS") / 1024;
    const bpfMapsMb = pinnedMapsBytes(join(PIN_DIR, "maps")) / 2 ** 20;
    // `weft status` and, interleaved with it, a bare `node -e 0`: Node's own start on this machine at this moment.
    const wall: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i <= s.runs; i++) {
      const started = process.hrtime.bigint();
      const r = spawnSync(process.execPath, [weft, "status", "--state-dir", stateDir], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`weft status exited ${r.status}: ${r.stderr.slice(0, 300)}`);
      if (i > 0) wall.push(Number(process.hrtime.bigint() - started) / 1e6); // the first run warms the page cache
      const t = process.hrtime.bigint();
      spawnSync(process.execPath, ["-e", "0"]);
      if (i > 0) bare.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const status = { runs: s.runs, medianMs: median(wall), p90Ms: percentile(wall, 90), minMs: Math.min(...wall), nodeMedianMs: median(bare) };
    return { cli, build: s.bundle ? "bundle" : "dist", nodeFlags, env, pssMb: memory.pssKb / 1024, memory, peersApplied: synced.peers, policyEntries: synced.policyEntries, rssMb, rssAnonMb, hwmMb, idleCpuPercent, wireguardGoRssMb, bpfMapsMb, status, startToSyncedMs };
  } catch (err) {
    // The logs go with the directory: their ends go with the error.
    for (const name of ["agent.log", "controller.log"]) {
      const text = await readFile(join(dir, name), "utf8").catch(() => "");
      if (text) say(`--- last lines of ${name}:\n${text.trimEnd().split("\n").slice(-15).join("\n")}`);
    }
    throw err;
  } finally {
    await stop(agent);
    await stop(controller);
    run(["ip", "link", "del", IFACE]); // wireguard-go exits with its device
    run(["rm", "-rf", PIN_DIR]);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The kernel memory of the maps pinned in `dir` (bytes), as bpftool reports it. */
function pinnedMapsBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const r = run(["bpftool", "-j", "map", "show", "pinned", join(dir, name)]);
    if (r.status !== 0) throw new Error(`bpftool map show pinned ${join(dir, name)}: ${r.stderr.trim()}`);
    total += Number((JSON.parse(r.stdout) as { bytes_memlock: number | string }).bytes_memlock);
  }
  return total;
}

/** A bare `node` that only waits, with this build's agent flags and settings: the runtime's own footprint. */
async function runtimeFloor(env: Record<string, string>, nodeFlags: string[]): Promise<{ rssMb: number; pssMb: number; memory: SmapsSummary }> {
  const child = spawn(process.execPath, [...nodeFlags, "-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore", env: { ...process.env, ...env } });
  try {
    await sleep(3000);
    const pid = child.pid as number;
    const memory = summarizeSmaps(readFileSync(`/proc/${pid}/smaps`, "utf8"), readlinkSync(`/proc/${pid}/exe`));
    return { rssMb: procStatusKb(pid, "VmRSS") / 1024, pssMb: memory.pssKb / 1024, memory };
  } finally {
    await stop(child);
  }
}

const row = (name: string, f: AgentFigures) =>
  `${name.padEnd(9)} RSS ${f.rssMb.toFixed(1).padStart(5)} MB (anon ${f.rssAnonMb.toFixed(1)}, peak ${f.hwmMb.toFixed(1)}, PSS ${f.pssMb.toFixed(1)})  idle CPU ${f.idleCpuPercent.toFixed(2)} %  ` +
  `weft status median ${f.status.medianMs.toFixed(0)} ms (p90 ${f.status.p90Ms.toFixed(0)}, min ${f.status.minMs.toFixed(0)}; node -e 0 ${f.status.nodeMedianMs.toFixed(0)})  synced ${(f.startToSyncedMs / 1000).toFixed(1)} s` +
  `  [${f.peersApplied} peers, ${f.policyEntries} entries; wireguard-go ${f.wireguardGoRssMb?.toFixed(1) ?? "?"} MB; eBPF maps ${f.bpfMapsMb.toFixed(1)} MB of kernel memory]`;

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error("the agent benchmark creates a network namespace, a WireGuard interface and eBPF programs: run it as root");
  if (process.env[IN_NETNS] !== "1") return runInNamespace();
  const s = parseSettings();
  say(`==> agent footprint: ${PEERS} peers, ${POLICIES * RULES_PER_POLICY} rules (load average ${loadavg()[0]?.toFixed(1)})`);
  const baseline = s.baseline === undefined ? undefined : await measure(s.baseline, { ...s, nodeFlags: [] });
  const current = await measure(s.cli, s);
  const floor = await runtimeFloor(current.env, checkoutAgentNodeFlags(checkoutOf(s.cli)));
  const result = { schema: "weft.bench.agent/v1", at: new Date().toISOString(), machine: describeMachine(repo), loadAverage: loadavg(), settings: { peers: PEERS, rules: POLICIES * RULES_PER_POLICY, settleS: s.settleS, idleS: s.idleS }, current, baseline, floor };
  await mkdir(s.out, { recursive: true });
  const text = `${JSON.stringify(result, null, 2)}\n`;
  const path = join(s.out, `agent-${result.at.replace(/[:.]/g, "-")}.json`);
  await writeFile(path, text);
  await writeFile(join(s.out, "agent-latest.json"), text);
  const breakdown = (name: string, m: SmapsSummary) => `\n${name}:\n${formatSmaps(m).map((l) => `  ${l}`).join("\n")}\n`;
  process.stdout.write(
    `\n${baseline ? `${row("baseline", baseline)}\n` : ""}${row("this", current)}\n` +
      `node      RSS ${floor.rssMb.toFixed(1).padStart(5)} MB (PSS ${floor.pssMb.toFixed(1)}): a bare node with this build's runtime settings, the floor\n` +
      `  targets: RSS ≤ 60 MB, idle CPU < 0.5 %, weft status < 150 ms\n` +
      (baseline ? breakdown("baseline agent, by mapping", baseline.memory) : "") +
      breakdown("this agent, by mapping", current.memory) +
      breakdown("bare node, by mapping", floor.memory) +
      `  written: ${path}\n`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`bench agent: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
