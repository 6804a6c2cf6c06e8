/**
 * CLI start-up benchmark: what a `weft` command costs before it does its work.
 *
 *   status   wall and CPU time of `weft status --json` against a state directory written here (an
 *            enrolled node with two peers; the status file names no interface, so no `wg` is run)
 *   help     wall and CPU time of `weft --help`
 *   agent    resident memory (`ps -o rss`) of a real `weft agent` process once it has started:
 *            it enrolls against a loopback listener that never answers, so it has loaded
 *            everything, made its keys and waits on its enrollment request; read 1 s after it
 *            says it is enrolling (no root, no interface, no network)
 *
 * Each over `--runs` repetitions (wall time median, p90, min; CPU time, user + system, median: the
 * figure to compare on a busy machine), plus the RSS of a bare `node -e "await
 * import(…)"` of each workspace package's entry, the issue's own measure of what a package costs.
 * Loopback only; nothing needs root. Writes bench-results/cli-<timestamp>.json and cli-latest.json.
 *
 *   npm run bench -- cli [--runs 20] [--cli path/to/main.js]
 *   npx tsx test/bench/cli.ts --cli /other/checkout/cli/dist/main.js   # compare two builds
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { describeMachine } from "./src/report.js";
import { median, percentile } from "./src/stats.js";

const say = (line: string) => process.stderr.write(`${line}\n`);
const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));

const NODE = "n-00000000000000b1";
const PEER_KEY = "hE9wB2Ck0Lrj1sZl0v3Q8bq5Gd2B3Q2k8nY1u9w3XWM=";

/** A state directory as an enrolled agent leaves it: state.json (schema-valid) and status.json. */
export async function writeAgentStateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const peer = (n: number) => ({
    version: 1,
    nodeId: `n-00000000000000c${n}`,
    name: `peer-${n}`,
    site: "aws",
    wireguardPublicKey: PEER_KEY,
    overlayAddress: `100.64.0.${10 + n}`,
    allowedIps: [`100.64.0.${10 + n}/32`],
    endpoints: { private: `10.10.0.${10 + n}:51820` },
    updatedAt: "2025-01-01T00:00:00.000Z",
  });
  const state = {
    version: 1,
    nodeId: NODE,
    name: "bench",
    site: "aws",
    overlayAddress: "100.64.0.2",
    overlayCidr: "100.64.0.0/16",
    controllerUrl: "https://127.0.0.1:8080",
    nats: { servers: ["nats://127.0.0.1:4222"], userJwt: "eyJ0eXAiOiJKV1QifQ.e30.sig" },
    heartbeatSeconds: 10,
    enrolledAt: "2025-01-01T00:00:00.000Z",
    applied: { revision: 7, peers: [peer(1), peer(2)], appliedAt: "2025-01-01T00:00:01.000Z" },
  };
  const status = { nodeId: NODE, nats: "connected", stale: false, appliedRevision: 7, peers: 2, policyRevision: -1, policyEntries: 0, lastSyncAt: "2025-01-01T00:00:01.000Z", updatedAt: "2025-01-01T00:00:01.000Z" };
  await writeFile(join(dir, "state.json"), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await writeFile(join(dir, "status.json"), `${JSON.stringify(status, null, 2)}\n`, { mode: 0o600 });
}

interface Timing {
  runs: number;
  /** Wall time, start to exit. */
  medianMs: number;
  p90Ms: number;
  minMs: number;
  /** CPU time (user + system) of the process: much less sensitive than wall time to other load on the machine. */
  cpuMedianMs: number;
}

/** bash's `times` after the command: its second line is the children's user and system time. */
const TIMES = 'command "$@" >/dev/null 2>&1; s=$?; times >&2; exit $s';
const seconds = (t: string) => {
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  return m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
};

function timeCommand(argv: string[], runs: number): Timing {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync("bash", ["-c", TIMES, "bash", process.execPath, ...argv], { encoding: "utf8" });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`node ${argv.join(" ")} exited ${r.status}: ${r.stderr.slice(0, 500)}`);
    const [user, sys] = (r.stderr.trim().split("\n").at(-1) ?? "").split(/\s+/).map(seconds);
    if (i === 0) continue; // the first run warms the page cache
    wall.push(ms);
    cpu.push(((user ?? Number.NaN) + (sys ?? Number.NaN)) * 1000);
  }
  return { runs, medianMs: median(wall), p90Ms: percentile(wall, 90), minMs: Math.min(...wall), cpuMedianMs: median(cpu) };
}

const line = (name: string, t: Timing) =>
  `${name.padEnd(20)} median ${t.medianMs.toFixed(0)} ms  p90 ${t.p90Ms.toFixed(0)} ms  min ${t.minMs.toFixed(0)} ms  cpu ${t.cpuMedianMs.toFixed(0)} ms`;

function rssKb(pid: number): number {
  const r = spawnSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" });
  const kb = Number(r.stdout.trim());
  if (!Number.isFinite(kb) || kb <= 0) throw new Error(`ps -o rss= -p ${pid}: ${JSON.stringify(r.stdout)}`);
  return kb;
}

/**
 * RSS of `weft agent` once it has started: it enrolls against a loopback "controller" that accepts
 * the connection and never answers, so the agent has loaded everything, made its keys and sits
 * waiting on its enrollment request; read 1 s after it logs that it is enrolling.
 */
async function agentRssMb(cli: string, dir: string): Promise<number> {
  const stateDir = await mkdtemp(join(dir, "agent-"));
  const held: Socket[] = [];
  const silent = createServer((sock) => held.push(sock));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const addr = silent.address();
  if (addr === null || typeof addr === "string") throw new Error("no loopback port");
  const child = spawn(process.execPath, [cli, "agent", "--state-dir", stateDir, "--controller", `http://127.0.0.1:${addr.port}`, "--no-datapath", "--metrics-listen", ""], {
    env: { ...process.env, WEFT_JOIN_KEY: "weft_bench_not_a_key", WEFT_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  try {
    let stderr = "";
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`weft agent did not start enrolling within 60 s: ${stderr.slice(0, 500)}`)), 60_000);
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (!stderr.includes("enrolling over plain HTTP")) return;
        clearTimeout(timer);
        ok();
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`weft agent exited ${code} before enrolling: ${stderr.slice(0, 500)}`));
      });
    });
    await new Promise((r) => setTimeout(r, 1000));
    if (child.exitCode !== null) throw new Error(`weft agent exited ${child.exitCode} while enrolling: ${stderr.slice(0, 500)}`);
    return rssKb(child.pid!) / 1024;
  } finally {
    child.kill("SIGKILL");
    for (const sock of held) sock.destroy();
    await new Promise((r) => silent.close(r));
  }
}

/** RSS of a node process that imported one module and nothing else. */
function importRssMb(path: string): number {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", `await import(${JSON.stringify(path)}); process.stdout.write(String(process.memoryUsage().rss))`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`import ${path}: ${r.stderr.slice(0, 500)}`);
  return Number(r.stdout) / 1024 / 1024;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "20" }, cli: { type: "string" }, out: { type: "string" } } });
  const runs = Number(values.runs);
  if (!(runs >= 1)) throw new Error("--runs must be at least 1");
  const cli = resolve(values.cli ?? join(repo, "cli", "dist", "main.js"));
  if (!existsSync(cli)) throw new Error(`the weft CLI is not built at ${cli}; run npm run build`);
  const checkout = resolve(dirname(cli), "..", "..");
  const dir = await mkdtemp(join(tmpdir(), "weft-bench-cli-"));
  try {
    const stateDir = join(dir, "state");
    await writeAgentStateDir(stateDir);
    say(`==> ${cli}: ${runs} runs each (load average ${loadavg()[0]?.toFixed(1)} on ${describeMachine(checkout).nproc} cpus)`);
    const status = timeCommand([cli, "status", "--json", "--state-dir", stateDir], runs);
    say(line("weft status --json", status));
    const help = timeCommand([cli, "--help"], runs);
    say(line("weft --help", help));
    const baseline = timeCommand(["-e", "0"], runs);
    say(`${line("node -e 0", baseline)}  (node itself)`);
    const agent: number[] = [];
    for (let i = 0; i < 3; i++) agent.push(await agentRssMb(cli, dir));
    say(`weft agent RSS       median ${median(agent).toFixed(0)} MB  (${agent.map((x) => x.toFixed(0)).join(", ")})`);
    const packages: Record<string, number> = {};
    for (const p of ["protocol", "agent", "controller", "cloud-adapters"]) {
      const entry = join(checkout, p, "dist", "index.js");
      if (existsSync(entry)) packages[p] = importRssMb(entry);
    }
    packages.node = importRssMb("node:path");
    say(`import RSS (MB)      ${Object.entries(packages).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")}`);
    const result = { kind: "cli", at: new Date().toISOString(), cli, machine: describeMachine(checkout), loadAverage: loadavg(), status, help, node: baseline, agentRssMb: agent, importRssMb: packages };
    const outDir = values.out ?? join(repo, "bench-results");
    await mkdir(outDir, { recursive: true });
    const text = `${JSON.stringify(result, null, 2)}\n`;
    await writeFile(join(outDir, `cli-${result.at.replace(/[:.]/g, "-")}.json`), text);
    await writeFile(join(outDir, "cli-latest.json"), text);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    say(`bench cli: ${(err as Error).message}`);
    process.exit(1);
  });
}
