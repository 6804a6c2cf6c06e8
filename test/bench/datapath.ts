/**
 * `npm run bench -- datapath` (scripts/bench.sh): the datapath benchmark, in its own network
 * namespaces (prefix `wdb-`), no lab, controller or agent. In one run:
 *   1. policy cost on a WireGuard interface's ingress: nothing, Weft's eBPF program with 0 / 1k /
 *      10k rules, and the same 1k / 10k rules as iptables — TCP throughput and small-UDP packets/s;
 *   2. same-site workload → workload transport: raw routing vs Weft's eBPF VXLAN vs WireGuard;
 * each case measured in rounds with rotating order, then a side-by-side table on stdout and
 * bench-results/datapath-<timestamp>.json (+ datapath-latest.json). Everything it creates is
 * removed in `finally`, on failure and on Ctrl-C too. See README.md.
 */
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BenchError, BenchInterruptedError } from "./src/errors.js";
import { runMain } from "./src/run-main.js";
import { startServer, stopServer, type IperfServer } from "./src/datapath-iperf.js";
import { DENIED_PORT, MEASURED_PORT, POLICY_CASES, PolicyBench, summarizePolicy, type PolicyCase, type PolicyCheck, type PolicySample } from "./src/datapath-policy.js";
import { DATAPATH_SCHEMA, formatDatapathReport, makeTarget, policyRatios, programCost, POLICY_TARGET, TRANSPORT_TARGET, writeDatapathResult, type DatapathBenchResult } from "./src/datapath-report.js";
import { must, run, sweep } from "./src/datapath-sys.js";
import { releasePidLock, takePidLock } from "./src/pidlock.js";
import { BPFFS, buildTopology, HOST_A, HOST_B, PREFIX, reachable, RUN_DIR } from "./src/datapath-topology.js";
import { summarizeTransport, TRANSPORT_CASES, TransportBench, WORKLOAD_DENIED_PORT, WORKLOAD_PORT, type TransportCase, type TransportCheck, type TransportSample } from "./src/datapath-transport.js";
import { roundOrder } from "./src/paths.js";
import { describeMachine } from "./src/report.js";
import { ratio } from "./src/stats.js";

const USAGE = `usage: npm run bench -- datapath [options]   (needs root)

  --rounds <n>          rounds over the cases, in rotating order (default 6: each policy case
                        takes every position once)
  --seconds <s>         iperf3 duration of each TCP and each UDP measurement (default 2)
  --udp-length <bytes>  UDP datagram size for the packet rate (default 64)
  --udp-rate <pps>      offered UDP datagrams per second; 0 = as fast as the sender can (default 0)
  --only <part>         policy | transport (default: both)
  --cases <a,b,…>       only these cases (names as in the table: none, ebpf-0, ebpf-1k, ebpf-10k,
                        iptables-1k, iptables-10k, raw, vxlan-ebpf, wireguard)
  --wg-mtu <n>          WireGuard interface MTU (default 1420)
  --workload-mtu <n>    workload veth MTU, every transport alike (default 1420)
  --vxlan-mtu <n>       VXLAN device MTU (default 1450)
  --out <dir>           where results go (default <repo>/bench-results)
`;

interface Settings {
  rounds: number;
  seconds: number;
  udpLength: number;
  udpRate: number;
  policyCases: PolicyCase[];
  transportCases: TransportCase[];
  wgMtu: number;
  workloadMtu: number;
  vxlanMtu: number;
  out: string;
}

const LOCK = "/run/wdb-bench.pid";
const repoRoot = (): string => resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const say = (line: string) => process.stderr.write(`${line}\n`);

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: "string", default: "6" },
      seconds: { type: "string", default: "2" },
      "udp-length": { type: "string", default: "64" },
      "udp-rate": { type: "string", default: "0" },
      only: { type: "string" },
      cases: { type: "string" },
      "wg-mtu": { type: "string", default: "1420" },
      "workload-mtu": { type: "string", default: "1420" },
      "vxlan-mtu": { type: "string", default: "1450" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const int = (name: string, v: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new BenchError(`--${name} ${v}: want an integer in ${min}..${max}`);
    return n;
  };
  if (values.only !== undefined && values.only !== "policy" && values.only !== "transport") throw new BenchError(`--only ${values.only}: want policy or transport`);
  const wanted = values.cases?.split(",").map((c) => c.trim()).filter(Boolean);
  const known = [...POLICY_CASES, ...TRANSPORT_CASES] as string[];
  for (const c of wanted ?? []) if (!known.includes(c)) throw new BenchError(`--cases: unknown case ${c}; cases: ${known.join(", ")}`);
  const pick = <T extends string>(all: readonly T[], part: "policy" | "transport"): T[] => (values.only && values.only !== part ? [] : all.filter((c) => !wanted || wanted.includes(c)));
  const s: Settings = {
    rounds: int("rounds", values.rounds, 1, 50),
    seconds: int("seconds", values.seconds, 1, 120),
    udpLength: int("udp-length", values["udp-length"], 16, 1372),
    udpRate: int("udp-rate", values["udp-rate"], 0, 10_000_000),
    policyCases: pick(POLICY_CASES, "policy"),
    transportCases: pick(TRANSPORT_CASES, "transport"),
    wgMtu: int("wg-mtu", values["wg-mtu"], 1280, 1500),
    workloadMtu: int("workload-mtu", values["workload-mtu"], 576, 1500),
    vxlanMtu: int("vxlan-mtu", values["vxlan-mtu"], 576, 1450),
    out: resolve(values.out ?? join(repoRoot(), "bench-results")),
  };

  if (s.workloadMtu > s.vxlanMtu) throw new BenchError(`--workload-mtu ${s.workloadMtu} is above the VXLAN device's ${s.vxlanMtu}: encapsulated frames would not fit the underlay`);
  if (s.policyCases.length + s.transportCases.length === 0) throw new BenchError("no case selected");
  return s;
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new BenchError("the benchmark builds network namespaces, WireGuard interfaces and tc programs: run it as root");
  for (const tool of ["iperf3", "wireguard-go", "wg", "tc", "iptables-restore", "ping"]) {
    if ((await run(["sh", "-c", `command -v ${tool}`])).exitCode !== 0) throw new BenchError(`${tool} is needed; run scripts/setup.sh`);
  }
  const machine = { ...describeMachine(repoRoot()), iptables: (await run(["iptables", "--version"])).stdout.trim() || null };

  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      say(`\n==> ${sig}: stopping after the current step, then tearing down`);
      abort.abort(new BenchInterruptedError(sig));
    } else if (signals === 2) {
      say(`==> still tearing down; ${sig} once more quits at once (then remove the wdb-* namespaces: ip netns list)`);
    } else {
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const sweepOpts = { prefix: PREFIX, runDir: RUN_DIR, bpffs: BPFFS };
  const emergency = (err: unknown) => {
    say(`weft bench: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n==> removing the wdb-* namespaces`);
    void sweep(sweepOpts).finally(() => process.exit(1));
  };
  process.once("uncaughtException", emergency);
  process.once("unhandledRejection", emergency);

  await takeLock();
  const started = Date.now();
  const date = new Date(started).toISOString();
  const step = (what: string) => {
    abort.signal.throwIfAborted();
    say(`==> [${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${what}`);
  };
  const servers: IperfServer[] = [];
  const policy = new PolicyBench();
  const transport = new TransportBench();
  let result: DatapathBenchResult | undefined;
  let failure: unknown;
  try {
    step("removing what an earlier run left (wdb-* namespaces, bpffs), then building the namespaces");
    for (const p of await sweep(sweepOpts)) say(`    ${p}`);
    await mkdir(BPFFS, { recursive: true });
    await must(["mount", "-t", "bpf", "bpf", BPFFS]);
    await buildTopology({ wgMtu: settings.wgMtu, workloadMtu: settings.workloadMtu, vxlanMtu: settings.vxlanMtu });
    if (!(await reachable(HOST_A.ns, HOST_B.overlay))) throw new BenchError(`${HOST_A.ns} cannot ping ${HOST_B.overlay} over WireGuard`);
    servers.push(await startServer(HOST_B.ns, HOST_B.overlay, MEASURED_PORT), await startServer(HOST_B.ns, HOST_B.overlay, DENIED_PORT));
    servers.push(await startServer(HOST_B.workloadNs, HOST_B.workload, WORKLOAD_PORT), await startServer(HOST_B.workloadNs, HOST_B.workload, WORKLOAD_DENIED_PORT));

    result = {
      schema: DATAPATH_SCHEMA,
      date,
      durationMs: 0,
      machine,
      settings: {
        rounds: settings.rounds,
        seconds: settings.seconds,
        udpLength: settings.udpLength,
        udpRate: settings.udpRate,
        wgMtu: settings.wgMtu,
        workloadMtu: settings.workloadMtu,
        vxlanMtu: settings.vxlanMtu,
        policyCases: settings.policyCases,
        transportCases: settings.transportCases,
      },
    };

    if (settings.policyCases.length > 0) {
      const cases = settings.policyCases;
      step(`policy: loading ${cases.filter((c) => c.startsWith("ebpf")).length} eBPF datapaths and their rules`);
      policy.prepare(cases);
      const checks: PolicyCheck[] = [];
      for (const c of cases) {
        step(`policy: checking ${c} (measured flow passes; port ${DENIED_PORT} ${c === "none" || c === "ebpf-0" ? "passes" : "is dropped"})`);
        checks.push(await policy.validate(c));
      }
      const samples: PolicySample[] = [];
      const measure = { seconds: settings.seconds, udpLength: settings.udpLength, udpRate: settings.udpRate, signal: abort.signal };
      for (let round = 0; round < settings.rounds; round++) {
        for (const [position, c] of roundOrder(cases, round).entries()) {
          step(`policy round ${round + 1}/${settings.rounds}: ${c}`);
          samples.push(await policy.measure(c, measure, round, position));
        }
      }
      await policy.apply("none");
      const summary = Object.fromEntries(cases.map((c) => [c, summarizePolicy(c, samples)]));
      const e0 = summary["ebpf-0"];
      const e10k = summary["ebpf-10k"];
      result.policy = {
        setup: policy.setup,
        checks,
        samples,
        summary,
        ratios: policyRatios(summary),
        ...(e0 && e10k ? { target: { ...makeTarget("ebpf-10k / ebpf-0 TCP throughput", e10k, e0, POLICY_TARGET), programCost: programCost(checks, summary) } } : {}),
      };
    }

    if (settings.transportCases.length > 0) {
      const cases = settings.transportCases;
      step("transport: loading the eBPF datapath of each host");
      await transport.prepare();
      const checks: TransportCheck[] = [];
      for (const c of cases) {
        step(`transport: checking ${c}${c === "vxlan-ebpf" ? ` (counters on B; port ${WORKLOAD_DENIED_PORT} is dropped)` : ""}`);
        checks.push(await transport.validate(c));
      }
      const samples: TransportSample[] = [];
      for (let round = 0; round < settings.rounds; round++) {
        for (const [position, c] of roundOrder(cases, round).entries()) {
          step(`transport round ${round + 1}/${settings.rounds}: ${c}`);
          samples.push(await transport.measure(c, { seconds: settings.seconds, signal: abort.signal }, round, position));
        }
      }
      const summary = Object.fromEntries(cases.map((c) => [c, summarizeTransport(c, samples)]));
      const raw = summary.raw;
      const vx = summary["vxlan-ebpf"];
      result.transport = {
        checks,
        samples,
        summary,
        ratios: Object.fromEntries(cases.map((c) => [c, { tcpVsRaw: ratio(summary[c]?.tcpMbps ?? Number.NaN, raw?.tcpMbps ?? Number.NaN) }])),
        ...(raw && vx ? { target: makeTarget("vxlan-ebpf / raw TCP throughput", vx, raw, TRANSPORT_TARGET) } : {}),
      };
    }
  } catch (err) {
    failure = abort.signal.aborted ? (abort.signal.reason as unknown) : err;
  } finally {
    say("==> tearing down");
    for (const s of servers) await stopServer(s).catch(() => undefined);
    await policy.close();
    transport.close();
    for (const p of await sweep(sweepOpts)) say(`    teardown problem: ${p}`);
    await releasePidLock(LOCK);
  }
  if (failure !== undefined) throw failure;
  if (!result) throw new BenchError("no result");
  result.durationMs = Date.now() - started;
  const path = await writeDatapathResult(settings.out, result);
  process.stdout.write(`\n${formatDatapathReport(result, path)}\n`);
  return 0;
}

/** One datapath benchmark at a time: a run starts by removing every wdb-* namespace, which must never be another run's. */
const takeLock = () => takePidLock(LOCK, (owner) => `another datapath benchmark (pid ${owner}) is running; wait for it`);

runMain(main, say);
