/**
 * `npm run bench -- services` (scripts/bench.sh): socket load balancing vs a userspace proxy, on
 * its own lab (prefix `wsb`). The client is the workload on gcp-1 (a third cloud); the service
 * `shop/bench` has three HTTP backends in two clouds: the api workloads on aws-2 and azure-2 and
 * the node aws-1 itself (HAProxy answering `200 <name>` on :8080 in each). In one run, side by side:
 *   (a) wrk straight to one backend's overlay address (aws-2's api workload),
 *   (b) wrk to the service's VIP: every connection balanced at connect() by the agent's eBPF
 *       (round robin), then no proxy and no per-packet NAT,
 *   (c) wrk to HAProxy in the client's own network namespace (mode tcp, round robin over the same
 *       three backends),
 * requests/s and p50/p99 latency with keep-alive connections, then the rate of new connections
 * (`Connection: close`, one request each) directly and through the VIP. Rounds in rotating order;
 * medians. Prints a table and writes bench-results/services-<timestamp>.json (+ services-latest.json).
 * Everything it starts is torn down in `finally`, on failure and on Ctrl-C too. See README.md.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { once } from "node:events";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { LabCluster, labDir, labDown, labExec, labUp, spawnInHost, waitFor, type LabOptions } from "@weft/lab";
import { loadState } from "@weft/agent";
import { BenchError, BenchInterruptedError } from "./src/errors.js";
import { releasePidLock, takePidLock } from "./src/pidlock.js";
import { roundOrder } from "./src/paths.js";
import { describeMachine } from "./src/report.js";
import { runMain } from "./src/run-main.js";
import { CASE_LABELS, SERVICE_CASES, SERVICES_SCHEMA, checksOf, formatServicesReport, parseWrk, summarize, writeServicesResult, type ServiceCase, type ServiceSample, type ServicesBenchResult } from "./src/services-wrk.js";

const USAGE = `usage: npm run bench -- services [options]   (needs root)

  --rounds <n>        rounds over the five cases, in rotating order (default 2)
  --seconds <s>       wrk duration of each measurement (default 8)
  --threads <n>       wrk threads (default 2)
  --connections <n>   wrk connections (default 50)
  --out <dir>         where results go (default <repo>/bench-results)
`;

const PREFIX = "wsb";
const opts: LabOptions = { prefix: PREFIX };
const RUN_DIR = `/run/${PREFIX}-bench`;
const LOCK = `/run/${PREFIX}-bench.pid`;
const CLIENT = "gcp-1-web";
const HOSTS = ["gcp-1", "aws-1", "aws-2", "azure-2"];
/** Backend servers: lab node → the name it answers with. aws-1 is a node backend (label tier=bench). */
const BACKENDS: Record<string, string> = { "aws-2-api": "aws-2-api", "azure-2-api": "azure-2-api", "aws-1": "aws-1" };
const BACKEND_PORT = 8080;
const HAPROXY_PORT = 8081;
const repoRoot = (): string => resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const say = (line: string) => process.stderr.write(`${line}\n`);

interface Settings {
  rounds: number;
  seconds: number;
  threads: number;
  connections: number;
  out: string;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: "string", default: "2" },
      seconds: { type: "string", default: "8" },
      threads: { type: "string", default: "2" },
      connections: { type: "string", default: "50" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const int = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new BenchError(`--${name} ${v}: want an integer in ${min}..${max}`);
    return n;
  };
  return {
    rounds: int("rounds", values.rounds, 1, 20),
    seconds: int("seconds", values.seconds, 1, 120),
    threads: int("threads", values.threads, 1, 16),
    connections: int("connections", values.connections, 1, 5000),
    out: resolve(values.out ?? join(repoRoot(), "bench-results")),
  };
}

const versionOf = (argv: string[], re: RegExp): string | null => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 5000 });
  return re.exec(`${r.stdout ?? ""}${r.stderr ?? ""}`)?.[1] ?? null;
};

/** An HAProxy config: a backend answering `200 <name>`, or the client-side round-robin proxy. */
function haproxyConfig(o: { serve: string } | { proxy: string[] }): string {
  const head = ["global", "  maxconn 4000", "defaults", "  timeout connect 5s", "  timeout client 60s", "  timeout server 60s"];
  if ("serve" in o) return [...head, "  mode http", "frontend serve", `  bind 0.0.0.0:${BACKEND_PORT}`, `  http-request return status 200 content-type text/plain string "${o.serve}"`, ""].join("\n");
  return [...head, "  mode tcp", "listen lb", `  bind 127.0.0.1:${HAPROXY_PORT}`, "  balance roundrobin", ...o.proxy.map((a, i) => `  server b${i} ${a}:${BACKEND_PORT}`), ""].join("\n");
}

/** `count` requests, each on a new connection, from the client: answers per backend name. */
const SPREAD_JS = `
const http = require("node:http");
const [url, count] = process.argv.slice(1);
const out = {};
const one = () => new Promise((done) => http.get(url, { agent: false }, (res) => { let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => { out[b] = (out[b] || 0) + 1; done(); }); }).on("error", (e) => { out["error:" + e.code] = (out["error:" + e.code] || 0) + 1; done(); }));
(async () => { for (let i = 0; i < Number(count); i++) await one(); console.log(JSON.stringify(out)); })();
`;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return ticks / 100; // USER_HZ
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new BenchError("the benchmark builds a lab (namespaces, WireGuard, eBPF, cgroups): run it as root");
  for (const tool of ["wrk", "haproxy", "wireguard-go", "wg"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new BenchError(`${tool} is needed; run scripts/setup.sh`);
  }
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals === 1) {
      say(`\n==> ${sig}: stopping after the current step, then tearing down`);
      abort.abort(new BenchInterruptedError(sig));
    } else if (signals > 2) process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  await takePidLock(LOCK, (pid) => `another services benchmark (pid ${pid}) is running`);
  const started = Date.now();
  const step = (what: string) => {
    abort.signal.throwIfAborted();
    say(`==> [${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${what}`);
  };
  const cluster = new LabCluster(opts);
  const procs: ChildProcess[] = [];
  const startHaproxy = async (node: string, name: string, config: string) => {
    const file = join(RUN_DIR, `${name}.cfg`);
    await writeFile(file, config);
    const p = spawnInHost(opts, node, ["haproxy", "-db", "-f", file], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    procs.push(p);
    await new Promise((r) => setTimeout(r, 500));
    if (p.exitCode !== null) throw new BenchError(`HAProxy ${name} on ${node} exited ${p.exitCode}: ${stderr.trim().split("\n").pop() ?? ""}`);
    return p;
  };
  try {
    step(`building the lab (prefix ${PREFIX}), the controller and agents on ${HOSTS.join(", ")}`);
    await labDown(opts);
    await rm(labDir(opts), { recursive: true, force: true });
    await mkdir(RUN_DIR, { recursive: true });
    await labUp(opts);
    await cluster.startController();
    const client = await cluster.client();
    const labels = { "weft:namespace": "infra", "weft:serviceaccount": "host", "weft:workload-namespaces": "shop" };
    const plain = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, labels, description: "services bench" });
    const tagged = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, labels: { ...labels, tier: "bench" }, description: "services bench: a node backend" });
    await Promise.all(HOSTS.map((h) => cluster.startAgent(h, h === "aws-1" ? tagged.key : plain.key)));
    await cluster.waitForFullMesh(180_000);
    const addresses = new Map<string, string>();
    await waitFor("the workloads' addresses", 120_000, async () => {
      for (const h of HOSTS) {
        const st = await loadState(cluster.agents.get(h)!.stateDir).catch(() => undefined);
        if (!st) return false;
        addresses.set(h, st.overlayAddress);
        for (const w of st.workloads ?? []) addresses.set(`${h}-${w.name}`, w.address);
      }
      return Object.keys(BACKENDS).every((b) => addresses.has(b)) && addresses.has(CLIENT);
    });

    step("starting HAProxy on the three backends and the service shop/bench (round robin, locality any)");
    for (const [node, name] of Object.entries(BACKENDS)) await startHaproxy(node, `backend-${name}`, haproxyConfig({ serve: name }));
    const svc = await client.applyService({
      name: "bench",
      namespace: "shop",
      description: "services benchmark",
      ports: [{ port: 80, targetPort: BACKEND_PORT }],
      algorithm: "round-robin",
      locality: "any",
      backends: [{ namespace: "shop", serviceAccount: "api" }, { labels: { tier: "bench" } }],
    });
    await waitFor("gcp-1's agent to apply shop/bench", 60_000, async () => {
      const st = await loadState(cluster.agents.get("gcp-1")!.stateDir).catch(() => undefined);
      return st?.appliedServices?.record?.services.some((s) => s.name === "bench" && s.backends.length === 3) === true;
    });
    const backendAddrs = Object.keys(BACKENDS).map((b) => addresses.get(b)!);
    const clientProxy = await startHaproxy(CLIENT, "client-lb", haproxyConfig({ proxy: backendAddrs }));
    const targets: Record<ServiceCase, string> = {
      direct: `http://${addresses.get("aws-2-api")}:${BACKEND_PORT}/`,
      vip: `http://${svc.vip}/`,
      haproxy: `http://127.0.0.1:${HAPROXY_PORT}/`,
      "direct-new": `http://${addresses.get("aws-2-api")}:${BACKEND_PORT}/`,
      "vip-new": `http://${svc.vip}/`,
    };

    step("checking the spread of 30 new connections through the VIP and through HAProxy");
    const spread: Record<string, Record<string, number>> = {};
    await waitFor("every backend to answer through the VIP and HAProxy", 30_000, async () => {
      for (const c of ["vip", "haproxy"] as const) {
        const r = await labExec(opts, CLIENT, [process.execPath, "-e", SPREAD_JS, targets[c], "30"], { timeoutMs: 30_000 });
        spread[c] = JSON.parse(r.stdout.trim() || "{}") as Record<string, number>;
      }
      return ["vip", "haproxy"].every((c) => Object.values(BACKENDS).every((b) => (spread[c]?.[b] ?? 0) > 0));
    }, 1000).catch((err: unknown) => {
      throw new BenchError(`${(err as Error).message}; last spread ${JSON.stringify(spread)}`);
    });

    const samples: ServiceSample[] = [];
    for (let round = 0; round < settings.rounds; round++) {
      for (const c of roundOrder([...SERVICE_CASES], round)) {
        step(`round ${round + 1}/${settings.rounds}: ${CASE_LABELS[c]} (${targets[c]})`);
        const fresh = c.endsWith("-new");
        const argv = ["wrk", "--latency", `-t${settings.threads}`, `-c${settings.connections}`, `-d${settings.seconds}s`, ...(fresh ? ["-H", "Connection: close"] : []), targets[c]];
        const startedAt = new Date().toISOString();
        const cpuBefore = cpuSeconds(clientProxy.pid);
        const r = await labExec(opts, CLIENT, argv, { timeoutMs: settings.seconds * 1000 + 60_000 });
        const cpuAfter = cpuSeconds(clientProxy.pid);
        if (r.exitCode !== 0) throw new BenchError(`wrk (${c}) exited ${r.exitCode}: ${r.stderr.slice(0, 300)}`);
        const proxy = c === "haproxy" && cpuBefore !== undefined && cpuAfter !== undefined ? { proxyCpuSeconds: cpuAfter - cpuBefore } : {};
        samples.push({ case: c, round, target: targets[c], startedAt, ...parseWrk(r.stdout), ...proxy });
      }
    }

    const summary = Object.fromEntries(SERVICE_CASES.map((c) => [c, summarize(samples, c)]).filter(([, s]) => s !== undefined)) as ServicesBenchResult["summary"];
    const machine = describeMachine(repoRoot());
    const result: ServicesBenchResult = {
      schema: SERVICES_SCHEMA,
      date: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      machine,
      settings: {
        prefix: PREFIX,
        client: CLIENT,
        backends: Object.keys(BACKENDS),
        seconds: settings.seconds,
        threads: settings.threads,
        connections: settings.connections,
        rounds: settings.rounds,
        haproxy: versionOf(["haproxy", "-v"], /version (\S+)/),
        wrk: versionOf(["wrk", "-v"], /^(wrk \S+)/m),
      },
      targets,
      spread,
      samples,
      summary,
      checks: checksOf(summary),
    };
    const path = await writeServicesResult(settings.out, result);
    process.stdout.write(`${formatServicesReport(result, path)}\n`);
    return 0;
  } finally {
    say("==> tearing down: HAProxy, agents, controller, the lab");
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = once(p, "exit");
        p.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      }
    }
    await cluster.stopAll().catch((err: unknown) => say(`    stopping the cluster: ${(err as Error).message}`));
    await labDown(opts).catch((err: unknown) => say(`    lab down: ${(err as Error).message}`));
    await rm(RUN_DIR, { recursive: true, force: true });
    await releasePidLock(LOCK);
  }
}

runMain(main, say);
