/**
 * `npm run bench -- services` (scripts/bench.sh): socket load balancing vs a userspace proxy, on
 * its own lab (prefix `wsb`). The client is the workload on gcp-1 (a third cloud); the service
 * `shop/bench` has three HTTP backends in two clouds: the api workloads on aws-2 and azure-2 and
 * the node aws-1 itself (HAProxy answering `200 <name>` on :8080 in each). In one run, side by side:
 *   (a) wrk straight to the backends' overlay addresses, one wrk thread per backend: the same
 *       mix of backends the VIP's round robin gives, so (a) vs (b) isolates the VIP,
 *   (b) wrk to the service's VIP: every connection balanced at connect() by the agent's eBPF
 *       (round robin), then no proxy and no per-packet NAT,
 *   (c) wrk to HAProxy in the client's own network namespace (mode tcp, round robin over the same
 *       three backends),
 * requests/s and p50/p99 latency with keep-alive connections, then the rate of new connections
 * (`Connection: close`, one request each) directly (same mix) and through the VIP; and, as a
 * diagnosis, keep-alive requests to each backend alone. A short unmeasured warm-up of every case,
 * then rounds with the cases interleaved in rotating order; medians, min–max, and the target
 * ratios paired within each round. Around each measurement: where the CPU went (services-cpu.ts)
 * and, for the VIP, what the client's balancer did (services-lb.ts: connects per backend, and
 * that the tc fallback NATed nothing). Prints tables and writes
 * bench-results/services-<timestamp>.json (+ services-latest.json). Everything it starts is torn
 * down in `finally`, on failure and on Ctrl-C too. See README.md.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { once } from "node:events";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { LabCluster, hostCgroup, hostPinDir, interfaceNameFor, labDir, labDown, labExec, labUp, spawnInHost, waitFor, type LabOptions } from "@weft/lab";
import { loadState } from "@weft/agent";
import { BenchError, BenchInterruptedError } from "./src/errors.js";
import { releasePidLock, takePidLock } from "./src/pidlock.js";
import { describeMachine } from "./src/report.js";
import { runMain } from "./src/run-main.js";
import { cpuDelta, findPids, readCpuSnapshot } from "./src/services-cpu.js";
import { lbDelta, readLbSnapshot, type LbSnapshot } from "./src/services-lb.js";
import { SERVICE_CASES, SERVICES_SCHEMA, balancedOrder, caseLabel, checksOf, formatServicesReport, isDirectMixCase, isNewConnectionCase, parseWrk, summarize, wrkMixScript, writeServicesResult, type ServiceCase, type ServiceSample, type ServicesBenchResult } from "./src/services-wrk.js";

const USAGE = `usage: npm run bench -- services [options]   (needs root)

  --rounds <n>        rounds over the cases, interleaved: rotating, every other round reversed (default 8)
  --seconds <s>       wrk duration of each measurement (default 5)
  --warmup <s>        unmeasured wrk run of each case before the rounds (default 2; 0: none)
  --threads <n>       wrk threads, a multiple of the 3 backends (default 3: one per backend in (a))
  --connections <n>   wrk connections, a multiple of --threads (default 48)
  --wrk-cpus <list>   run wrk under taskset -c <list> (default: unpinned)
  --no-per-backend    skip the diagnostic cases (keep-alive requests to each backend alone)
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
  warmup: number;
  threads: number;
  connections: number;
  wrkCpus: string | null;
  perBackend: boolean;
  out: string;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: "string", default: "8" },
      seconds: { type: "string", default: "5" },
      warmup: { type: "string", default: "2" },
      threads: { type: "string", default: "3" },
      connections: { type: "string", default: "48" },
      "wrk-cpus": { type: "string" },
      "no-per-backend": { type: "boolean", default: false },
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
  const threads = int("threads", values.threads, 1, 15);
  const connections = int("connections", values.connections, 1, 4998);
  const backends = Object.keys(BACKENDS).length;
  // (a) gives each backend the threads i ≡ k (mod 3), and wrk splits connections evenly over threads.
  if (threads % backends !== 0) throw new BenchError(`--threads ${threads}: want a multiple of ${backends} (one wrk thread per backend in the direct mix)`);
  if (connections % threads !== 0) throw new BenchError(`--connections ${connections}: want a multiple of --threads ${threads} (the same number of connections to each backend)`);
  const wrkCpus = values["wrk-cpus"] ?? null;
  if (wrkCpus !== null && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(wrkCpus)) throw new BenchError(`--wrk-cpus ${wrkCpus}: want a CPU list such as 0 or 0-1`);
  return {
    rounds: int("rounds", values.rounds, 1, 20),
    seconds: int("seconds", values.seconds, 1, 120),
    warmup: int("warmup", values.warmup, 0, 30),
    threads,
    connections,
    wrkCpus,
    perBackend: !values["no-per-backend"],
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
    // (a): wrk thread i → backend i mod 3 (the lab's namespaces share this filesystem).
    const mixScript = join(RUN_DIR, "direct-mix.lua");
    await writeFile(mixScript, wrkMixScript(backendAddrs.map((address) => ({ address, port: BACKEND_PORT }))));
    const mixTarget = `http://${backendAddrs[0]}:${BACKEND_PORT}/`;
    const targets: Partial<Record<ServiceCase, string>> = {
      direct: `${backendAddrs.map((a) => `${a}:${BACKEND_PORT}`).join(" + ")} (one wrk thread each)`,
      vip: `http://${svc.vip}/`,
      haproxy: `http://127.0.0.1:${HAPROXY_PORT}/`,
      "direct-new": `${backendAddrs.map((a) => `${a}:${BACKEND_PORT}`).join(" + ")} (one wrk thread each)`,
      "vip-new": `http://${svc.vip}/`,
    };
    targets["direct-again"] = targets.direct;
    const cases: ServiceCase[] = [...SERVICE_CASES];
    if (settings.perBackend) {
      for (const b of Object.keys(BACKENDS)) {
        cases.push(`direct:${b}`);
        targets[`direct:${b}`] = `http://${addresses.get(b)}:${BACKEND_PORT}/`;
      }
    }
    const wrkArgv = (c: ServiceCase, seconds: number): string[] => {
      const mix = isDirectMixCase(c);
      return [
        ...(settings.wrkCpus ? ["taskset", "-c", settings.wrkCpus] : []),
        "wrk", "--latency", `-t${settings.threads}`, `-c${settings.connections}`, `-d${seconds}s`,
        ...(isNewConnectionCase(c) ? ["-H", "Connection: close"] : []),
        ...(mix ? ["-s", mixScript, mixTarget] : [targets[c]!]),
      ];
    };

    // Where the CPU goes: each lab host's cgroup (wrk and the client HAProxy in gcp-1's, the
    // backends' HAProxy in theirs), each host's wireguard-go, the agents; the rest is "other".
    const cgroups = Object.fromEntries(HOSTS.map((h) => [h === "gcp-1" ? "gcp-1 cgroup" : `${h} cgroup`, hostCgroup(opts, h)]).filter((e): e is [string, string] => e[1] !== undefined));
    const groups: Record<string, number[]> = {};
    for (const h of HOSTS) {
      const iface = interfaceNameFor(h, PREFIX);
      groups[`wg-go ${h}`] = findPids((_comm, cmd) => cmd.trim().split(" ")[0]?.endsWith("wireguard-go") === true && cmd.trim().split(" ")[1] === iface);
    }
    const pinRoot = hostPinDir(opts, "gcp-1");
    groups["agents"] = findPids((_comm, cmd) => cmd.includes(`${join(pinRoot, "..")}/`) && cmd.includes("--bpf-pin-dir"));
    say(`    CPU accounting: ${Object.entries(groups).map(([k, v]) => `${k} ${v.length} pid(s)`).join(", ")}; cgroups ${Object.keys(cgroups).join(", ")}`);

    step("checking the spread of 30 new connections through the VIP and through HAProxy");
    const spread: Record<string, Record<string, number>> = {};
    await waitFor("every backend to answer through the VIP and HAProxy", 30_000, async () => {
      for (const c of ["vip", "haproxy"] as const) {
        const r = await labExec(opts, CLIENT, [process.execPath, "-e", SPREAD_JS, targets[c]!, "30"], { timeoutMs: 30_000 });
        spread[c] = JSON.parse(r.stdout.trim() || "{}") as Record<string, number>;
      }
      return ["vip", "haproxy"].every((c) => Object.values(BACKENDS).every((b) => (spread[c]?.[b] ?? 0) > 0));
    }, 1000).catch((err: unknown) => {
      throw new BenchError(`${(err as Error).message}; last spread ${JSON.stringify(spread)}`);
    });

    const runWrk = async (c: ServiceCase, seconds: number) => {
      const r = await labExec(opts, CLIENT, wrkArgv(c, seconds), { timeoutMs: seconds * 1000 + 60_000 });
      if (r.exitCode !== 0) throw new BenchError(`wrk (${c}) exited ${r.exitCode}: ${r.stderr.slice(0, 300)}`);
      return parseWrk(r.stdout);
    };
    if (settings.warmup > 0) {
      step(`warm-up: ${settings.warmup} s of each case, not measured`);
      for (const c of cases) await runWrk(c, settings.warmup);
    }

    const lbSnapshot = (): LbSnapshot | undefined => {
      try {
        return readLbSnapshot(pinRoot, svc.vip, hostCgroup(opts, "gcp-1"));
      } catch (err) {
        say(`    reading gcp-1's lb maps: ${(err as Error).message}`);
        return undefined;
      }
    };
    const samples: ServiceSample[] = [];
    for (let round = 0; round < settings.rounds; round++) {
      const order = balancedOrder(cases, round);
      for (const [position, c] of order.entries()) {
        step(`round ${round + 1}/${settings.rounds}: ${caseLabel(c)} (${targets[c]})`);
        const startedAt = new Date().toISOString();
        const lbBefore = lbSnapshot();
        const cpuBefore = readCpuSnapshot(cgroups, groups);
        const proxyBefore = cpuSeconds(clientProxy.pid);
        const w = await runWrk(c, settings.seconds);
        const proxyAfter = cpuSeconds(clientProxy.pid);
        const cpu = cpuDelta(cpuBefore, readCpuSnapshot(cgroups, groups));
        const lbAfter = lbBefore ? lbSnapshot() : undefined;
        const proxy = c === "haproxy" && proxyBefore !== undefined && proxyAfter !== undefined ? { proxyCpuSeconds: proxyAfter - proxyBefore } : {};
        const lb = lbBefore && lbAfter ? { lb: lbDelta(lbBefore, lbAfter) } : {};
        samples.push({ case: c, round, position, target: targets[c]!, startedAt, ...w, ...proxy, cpu, ...lb });
      }
    }
    const tcFlows = samples.filter((x) => x.lb !== undefined && x.lb.tcNatFlows > 0);
    if (tcFlows.length > 0) say(`    WARNING: the tc fallback NATed VIP flows in ${tcFlows.length} measurement(s): not the socket path`);

    const summary = Object.fromEntries(cases.map((c) => [c, summarize(samples, c)]).filter(([, s]) => s !== undefined)) as ServicesBenchResult["summary"];
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
        warmupSeconds: settings.warmup,
        threads: settings.threads,
        connections: settings.connections,
        rounds: settings.rounds,
        wrkCpus: settings.wrkCpus,
        perBackend: settings.perBackend,
        haproxy: versionOf(["haproxy", "-v"], /version (\S+)/),
        wrk: versionOf(["wrk", "-v"], /^(wrk \S+)/m),
      },
      targets,
      spread,
      samples,
      summary,
      checks: checksOf(samples),
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
