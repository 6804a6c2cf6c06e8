/**
 * `npm run bench` (scripts/bench.sh): the overlay benchmark on a dedicated lab (prefix `wtb`,
 * so the demo's lab is never touched). In one run, between two hosts in different clouds:
 *   1. underlay vs Weft overlay TCP throughput and ping latency;
 *   2. the same over WireGuard configured by hand with the same implementation (the current
 *      wireguard-go the agents run), so Weft's own cost shows as the ratio weft / hand (expected
 *      ~1.0: same data path), and by hand with Debian 12's wireguard-go (current / Debian);
 *   3. start-up (all agents at once → handshakes with every peer), agent restart and host
 *      restart times;
 *   4. the relayed-path row: onprem-1 → cgnat-1 (both behind NAT, cgnat's picking a port per
 *      destination) over the relay aws-2, then over the punched direct path once cgnat's NAT keeps
 *      ports: throughput and RTT of each, and how long each path took to come up (src/relay.ts);
 * then prints a table and writes bench-results/overlay-<timestamp>.json (+ overlay-latest.json).
 * Everything it starts is torn down in `finally`, on failure and on Ctrl-C too. See README.md.
 */
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { RELAY_LABEL } from "@weft/protocol";
import { LabCluster, labDir, labDown, labExec, labTopology, labUp, repoRoot, resolveLabOptions, type Host, type LabOptions } from "@weft/lab";
import { measureAgentRestart, measureHostRestart, measureStartup, ifaceOf, type Agents, type StartupResult } from "./src/convergence.js";
import { BenchError, BenchInterruptedError } from "./src/errors.js";
import { runMain } from "./src/run-main.js";
import { setUpHandTunnel, tearDownHandTunnel, type HandTunnelOptions } from "./src/handwg.js";
import { bundleCheckout } from "./src/launcher.js";
import { takePidLock } from "./src/pidlock.js";
import { measureLatency, startIperfServer, stopIperfServer, type IperfServer } from "./src/measure.js";
import { measureRelay } from "./src/relay.js";
import { compare, measurePath, PATH_NAMES, roundOrder, summarizePath, type PathName, type PathSample, type PathTarget } from "./src/paths.js";
import { describeMachine, formatReport, formatStartup, writeResult, SCHEMA, type OverlayBenchResult } from "./src/report.js";

const USAGE = `usage: npm run bench -- [options]   (needs root)

  --rounds <n>          rounds of [underlay, weft, hand, handDebian] (default 3)
  --seconds <s>         iperf3 duration per measurement (default 5)
  --pings <n>           pings per measurement (default 20)
  --interval <s>        seconds between pings (default 0.2)
  --from <host>         sender, a cloud host (default aws-1)
  --to <host>           receiver, a cloud host in another site (default azure-1)
  --restart-host <host> host restarted for the restart timings (default gcp-1)
  --restart-timeout <s> how long the host restart waits for all handshakes (default 30)
  --prefix <name>       lab prefix (default wtb; never the demo's "weft")
  --out <dir>           where results go (default <repo>/bench-results)
  --startup-only        measure only the start-up, print it, write
                        bench-results/overlay-startup-<timestamp>.json and keep the agents' logs
  --build <bundle|dist> what the agents and the controller run: the package's bundle
                        (packaging/bundle.mjs, what an installed weft runs; default) or cli/dist
  --cli <main.js>       run this built weft instead (another checkout's cli/dist/main.js or
                        bundle, to compare builds side by side); overrides --build
`;

interface Settings {
  rounds: number;
  seconds: number;
  pings: number;
  intervalS: number;
  from: string;
  to: string;
  restartHost: string;
  restartTimeoutMs: number;
  prefix: string;
  out: string;
  startupOnly: boolean;
  build: Build;
  cli: string | undefined;
}

/** What the lab's agents and controller run: the package's bundle (as installed) or cli/dist. */
type Build = "bundle" | "dist";

/** Hand-made tunnels: their own addresses, ports and interface names, apart from Weft's and each other's. */
const HAND = { port: 51900, from: "10.200.0.1", to: "10.200.0.2", ifacePrefix: "wgb" } as const;
const HAND_DEBIAN = { port: 51901, from: "10.201.0.1", to: "10.201.0.2", ifacePrefix: "wgd" } as const;
/** Debian 12's wireguard-go, the baseline the current build (what the agents run) is compared with. */
const DEBIAN_WIREGUARD_GO = "/usr/bin/wireguard-go";
const IPERF_PORTS: Record<PathName, number> = { underlay: 5201, weft: 5202, hand: 5203, handDebian: 5204 };
/** The relayed-path row: its iperf3 port, the relay node (labelled `weft:relay` through its join key), the sites it adds. */
const RELAY = { port: 5205, node: "aws-2", sites: ["branch", "cgnat"] } as const;
const STARTUP_TIMEOUT_MS = 60_000;
const AGENT_RESTART_TIMEOUT_MS = 30_000;

const say = (line: string) => process.stderr.write(`${line}\n`);

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "5" },
      pings: { type: "string", default: "20" },
      interval: { type: "string", default: "0.2" },
      from: { type: "string", default: "aws-1" },
      to: { type: "string", default: "azure-1" },
      "restart-host": { type: "string", default: "gcp-1" },
      "restart-timeout": { type: "string", default: "30" },
      prefix: { type: "string", default: "wtb" },
      out: { type: "string" },
      "startup-only": { type: "boolean", default: false },
      build: { type: "string", default: "bundle" },
      cli: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new BenchError(`--${name} ${v}: want a number ≥ ${min}`);
    return n;
  };
  const s: Settings = {
    rounds: Math.round(num("rounds", values.rounds, 1)),
    seconds: Math.round(num("seconds", values.seconds, 1)),
    pings: Math.round(num("pings", values.pings, 1)),
    intervalS: num("interval", values.interval, 0.01),
    from: values.from,
    to: values.to,
    restartHost: values["restart-host"],
    restartTimeoutMs: num("restart-timeout", values["restart-timeout"], 1) * 1000,
    prefix: values.prefix,
    out: resolve(values.out ?? join(repoRoot(), "bench-results")),
    startupOnly: values["startup-only"],
    build: values.build as Build,
    cli: values.cli === undefined ? undefined : resolve(values.cli),
  };
  if (s.cli !== undefined && !existsSync(s.cli)) throw new BenchError(`--cli ${values.cli}: no such file`);
  if (s.build !== "bundle" && s.build !== "dist") throw new BenchError(`--build ${values.build}: want bundle or dist`);
  if (s.prefix === "weft") throw new BenchError("--prefix weft is the demo's lab; the benchmark uses its own (default wtb)");
  const hosts = labTopology({ prefix: s.prefix }).hosts;
  const host = (name: string, flag: string): Host => {
    const h = hosts.find((x) => x.name === name);
    if (!h) throw new BenchError(`--${flag} ${name}: not a lab host; hosts: ${hosts.map((x) => x.name).join(", ")}`);
    return h;
  };
  const from = host(s.from, "from");
  const to = host(s.to, "to");
  host(s.restartHost, "restart-host");
  if (!from.publicAddress || !to.publicAddress) throw new BenchError("--from and --to must be cloud hosts (with a public address): the underlay is measured to the public address");
  if (from.site === to.site) throw new BenchError(`--from ${s.from} and --to ${s.to} are in the same site; pick hosts in two clouds`);
  return s;
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new BenchError("the benchmark builds network namespaces and WireGuard interfaces: run it as root");
  const repo = repoRoot();
  const machine = describeMachine(repo);
  // --startup-only runs only the agents, with whichever wireguard-go the lab finds (the current one in .weft/bin first).
  if (settings.startupOnly) {
    if (!machine.wireguardGo && !machine.wireguardGoCurrent) throw new BenchError("wireguard-go is needed; run scripts/setup.sh");
  } else if (!machine.wireguardGo || !machine.wireguardGoCurrent || !machine.iperf3) throw new BenchError("Debian's and the current wireguard-go, and iperf3, are needed; run scripts/setup.sh (it builds the current wireguard-go into .weft/bin)");

  // The NAT sites are there for the relayed-path row; the start-up figures keep the seven hosts.
  const opts: LabOptions = { prefix: settings.prefix, layout: { natSites: true } };
  const topology = labTopology(opts);
  const from = topology.hosts.find((h) => h.name === settings.from) as Host;
  const to = topology.hosts.find((h) => h.name === settings.to) as Host;
  const hand: HandTunnelOptions = {
    a: { host: from.name, iface: `${HAND.ifacePrefix}-${from.name}`.slice(0, 15), address: HAND.from, publicAddress: from.publicAddress as string },
    b: { host: to.name, iface: `${HAND.ifacePrefix}-${to.name}`.slice(0, 15), address: HAND.to, publicAddress: to.publicAddress as string },
    port: HAND.port,
    mtu: 0, // set to the Weft interface's MTU once it exists
    binary: join(repo, ".weft", "bin", "wireguard-go"),
  };
  const handDebian: HandTunnelOptions = {
    a: { ...hand.a, iface: `${HAND_DEBIAN.ifacePrefix}-${from.name}`.slice(0, 15), address: HAND_DEBIAN.from },
    b: { ...hand.b, iface: `${HAND_DEBIAN.ifacePrefix}-${to.name}`.slice(0, 15), address: HAND_DEBIAN.to },
    port: HAND_DEBIAN.port,
    mtu: 0,
    binary: DEBIAN_WIREGUARD_GO,
  };

  // Ctrl-C / SIGTERM: finish the current step, then tear down (a third signal quits at once).
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      say(`\n==> ${sig}: stopping after the current step, then tearing down`);
      abort.abort(new BenchInterruptedError(sig));
    } else if (signals === 2) {
      say(`==> still tearing down; ${sig} once more quits at once (then run: node cli/dist/main.js lab down --prefix ${settings.prefix})`);
    } else {
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // A bug that escapes every await (an unhandled 'error' event) must not leave the lab running:
  // labDown stops every process in the lab's namespaces (agents, wireguard-go, iperf3) and removes them.
  const emergency = (err: unknown) => {
    say(`weft bench: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n==> removing the lab ${settings.prefix}`);
    void labDown(opts).finally(() => process.exit(1));
  };
  process.once("uncaughtException", emergency);
  process.once("unhandledRejection", emergency);

  const lock = await takeLock(opts);
  const started = Date.now();
  const step = (what: string) => {
    abort.signal.throwIfAborted();
    say(`==> [${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${what}`);
  };

  const date = new Date(started).toISOString();
  let bundleDir: string | undefined;
  let cluster: LabCluster | undefined;
  let handUp = false;
  const servers: IperfServer[] = [];
  let result: OverlayBenchResult | undefined;
  let failure: unknown;
  try {
    step(`lab ${settings.prefix}: clearing what an earlier run left, then building it`);
    await labDown(opts);
    if (existsSync(labDir(opts))) throw new BenchError(`${labDir(opts)} exists but no lab records it; remove it (it holds only benchmark state) or use another --prefix`);
    await labUp(opts);

    let cliPath = settings.cli;
    if (cliPath === undefined && settings.build === "bundle") {
      step("bundling weft as the package does (packaging/bundle.mjs)");
      bundleDir = await mkdtemp(join(tmpdir(), "weft-bench-bundle-"));
      cliPath = bundleCheckout(repo, bundleDir);
    }
    cluster = new LabCluster({ ...opts, ...(cliPath ? { cliPath } : {}) });
    step(`starting the controller (${ran(settings)})`);
    await cluster.startController();
    const client = await cluster.client();
    // The lab's hosts run workloads in namespace "shop": allowed, so the agents do not retry a refused request during the start-up.
    const workloadLabels = { "weft:workload-namespaces": "shop" };
    const key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "overlay benchmark", labels: workloadLabels });
    const relayKey = await client.createJoinKey({ reusable: false, ttlSeconds: 3600, description: "overlay benchmark: the relay", labels: { ...workloadLabels, [RELAY_LABEL]: "true" } });

    const hosts = topology.hosts.filter((h) => !(RELAY.sites as readonly string[]).includes(h.site)).map((h) => h.name);
    const keyFor = (h: string) => (h === RELAY.node ? relayKey.key : key.key);
    if (settings.startupOnly) {
      const c = cluster;
      step(`start-up: ${hosts.length} agents at once, polling every interface's handshakes every 50 ms`);
      const { result: startup } = await measureStartup({ cluster: c, prefix: settings.prefix, hosts }, keyFor, { timeoutMs: STARTUP_TIMEOUT_MS, signal: abort.signal });
      return await finishStartupOnly(settings.out, date, machine, ran(settings), startup, c);
    }
    step(`start-up: ${hosts.length} agents at once, polling every interface's handshakes every 50 ms`);
    const { result: startup, names } = await measureStartup({ cluster, prefix: settings.prefix, hosts }, keyFor, { timeoutMs: STARTUP_TIMEOUT_MS, signal: abort.signal });
    const agents: Agents = { cluster, prefix: settings.prefix, hosts, names };
    const toOverlay = (await client.getNode(to.name)).overlayAddress;
    if (!toOverlay) throw new BenchError(`the controller lists no overlay address for ${to.name}`);

    step(`agent restart: ${settings.restartHost} (state and interface kept)`);
    const agentRestart = await measureAgentRestart(agents, settings.restartHost, { timeoutMs: AGENT_RESTART_TIMEOUT_MS, signal: abort.signal });
    step(`host restart: ${settings.restartHost} (interface deleted, state kept)`);
    const hostRestart = await measureHostRestart(agents, settings.restartHost, { timeoutMs: settings.restartTimeoutMs, signal: abort.signal });

    hand.mtu = handDebian.mtu = await interfaceMtu(opts, from.name, ifaceOf(agents, from.name));
    step(`hand-configured wireguard-go, current: ${hand.a.iface} ${HAND.from} ↔ ${hand.b.iface} ${HAND.to}, UDP ${HAND.port}; Debian's: ${handDebian.a.iface} ${HAND_DEBIAN.from} ↔ ${handDebian.b.iface} ${HAND_DEBIAN.to}, UDP ${HAND_DEBIAN.port}; MTU ${hand.mtu}`);
    handUp = true;
    await setUpHandTunnel(opts, hand);
    await setUpHandTunnel(opts, handDebian);

    const paths: Record<PathName, PathTarget> = {
      underlay: { name: "underlay", address: to.publicAddress as string, bindAddress: to.privateAddress, port: IPERF_PORTS.underlay },
      weft: { name: "weft", address: toOverlay, bindAddress: toOverlay, port: IPERF_PORTS.weft },
      hand: { name: "hand", address: HAND.to, bindAddress: HAND.to, port: IPERF_PORTS.hand },
      handDebian: { name: "handDebian", address: HAND_DEBIAN.to, bindAddress: HAND_DEBIAN.to, port: IPERF_PORTS.handDebian },
    };
    step(`iperf3 servers on ${to.name}: ${PATH_NAMES.map((p) => `${paths[p].bindAddress}:${paths[p].port}`).join(", ")}`);
    for (const p of PATH_NAMES) servers.push(await startIperfServer(opts, to.name, paths[p].bindAddress, paths[p].port));
    // Warm-up: handshake on the hand-made tunnel, neighbour and conntrack entries on every path.
    for (const p of PATH_NAMES) {
      const warm = await measureLatency(opts, from.name, paths[p].address, 3, 0.2);
      if (warm.received === 0) throw new BenchError(`${from.name} cannot reach ${paths[p].address} (${p}): no reply to 3 pings`);
    }

    const samples: (PathSample & { path: PathName })[] = [];
    const measure = { from: from.name, seconds: settings.seconds, pings: settings.pings, intervalS: settings.intervalS, signal: abort.signal };
    for (let round = 0; round < settings.rounds; round++) {
      const order = roundOrder(PATH_NAMES, round);
      for (const [position, p] of order.entries()) {
        step(`round ${round + 1}/${settings.rounds}: ${p} (${paths[p].address})`);
        samples.push({ path: p, ...(await measurePath(opts, measure, paths[p], round, position)) });
      }
    }

    step(`relayed path: onprem-1 → cgnat-1 via ${RELAY.node}, then direct once cgnat's NAT keeps ports`);
    const relay = await measureRelay(opts, cluster, key.key, RELAY.node, { rounds: settings.rounds, seconds: settings.seconds, pings: settings.pings, intervalS: settings.intervalS, signal: abort.signal, port: RELAY.port }, say);

    const summary = Object.fromEntries(PATH_NAMES.map((p) => [p, summarizePath(samples.filter((s) => s.path === p))])) as OverlayBenchResult["summary"];
    result = {
      schema: SCHEMA,
      date,
      durationMs: 0,
      machine,
      settings: {
        prefix: settings.prefix,
        from: from.name,
        to: to.name,
        rounds: settings.rounds,
        iperfSeconds: settings.seconds,
        pings: settings.pings,
        pingIntervalS: settings.intervalS,
        mtu: hand.mtu,
        handPort: HAND.port,
        handDebianPort: HAND_DEBIAN.port,
        build: ran(settings),
      },
      paths,
      samples,
      summary,
      ratios: {
        weftOverUnderlay: compare(summary.weft, summary.underlay),
        handOverUnderlay: compare(summary.hand, summary.underlay),
        weftOverHand: compare(summary.weft, summary.hand),
        currentOverDebian: compare(summary.hand, summary.handDebian),
      },
      convergence: { startup, agentRestart, hostRestart },
      relay,
    };
  } catch (err) {
    // A step cut short by Ctrl-C (its tools got the SIGINT too) fails in its own way; report the interruption.
    failure = abort.signal.aborted ? (abort.signal.reason as unknown) : err;
  } finally {
    say("==> tearing down");
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    };
    for (const s of servers) await attempt(`stop iperf3 on ${s.address}:${s.port}`, () => stopIperfServer(s));
    if (handUp) await attempt("remove the hand-made interfaces", () => Promise.all([tearDownHandTunnel(opts, hand), tearDownHandTunnel(opts, handDebian)]));
    if (cluster) {
      const c = cluster;
      await attempt("stop the agents and the controller", () => c.stopAll());
      if (failure !== undefined && !(failure instanceof BenchInterruptedError)) {
        const kept = join(settings.out, `overlay-${date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-")}-logs`);
        await attempt("keep the logs", async () => {
          await cp(c.logDir, kept, { recursive: true });
          say(`    logs of the failed run: ${kept}`);
        });
      }
    }
    await attempt(`lab down ${settings.prefix}`, () => labDown(opts));
    if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
    await rm(lock, { force: true });
    for (const p of problems) say(`    teardown problem: ${p}`);
  }
  if (failure !== undefined) throw failure;
  if (!result) throw new BenchError("no result");
  result.durationMs = Date.now() - started;
  const path = await writeResult(settings.out, result);
  process.stdout.write(`\n${formatReport(result, path)}\n`);
  return 0;
}

/** What the agents and the controller ran, in words. */
function ran(s: Settings): string {
  return s.cli ?? (s.build === "bundle" ? "the package's bundle" : "cli/dist");
}

/**
 * `--startup-only`: the start-up figures alone, written to overlay-startup-<timestamp>.json, and
 * the agents' and controller's logs copied next to it (their timestamps explain the figures).
 */
async function finishStartupOnly(out: string, date: string, machine: ReturnType<typeof describeMachine>, build: string, startup: StartupResult, cluster: LabCluster): Promise<number> {
  const stamp = date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  await mkdir(out, { recursive: true });
  const logs = join(out, `overlay-startup-${stamp}-logs`);
  await cp(cluster.logDir, logs, { recursive: true });
  const path = join(out, `overlay-startup-${stamp}.json`);
  const doc = JSON.stringify({ schema: "weft.bench.overlay-startup/v1", date, machine, build, startup }, null, 2);
  await writeFile(path, `${doc}\n`);
  await writeFile(join(out, "overlay-startup-latest.json"), `${doc}\n`);
  process.stdout.write(`\n${formatStartup(startup)}\n  agents and controller ran: ${build}\n  written: ${path}\n  logs: ${logs}\n`);
  return 0;
}

/**
 * One benchmark per prefix at a time: the run starts by tearing down whatever its lab left, which
 * must never be another run's live lab. `<runDir>/<prefix>.bench.pid` holds the owner's pid.
 */
async function takeLock(opts: LabOptions): Promise<string> {
  const { runDir, prefix } = resolveLabOptions(opts);
  const path = join(runDir, `${prefix}.bench.pid`);
  await takePidLock(path, (owner) => `another benchmark (pid ${owner}) is using the lab ${prefix}; wait for it or use another --prefix`);
  return path;
}

async function interfaceMtu(opts: LabOptions, host: string, iface: string): Promise<number> {
  const res = await labExec(opts, host, ["cat", `/sys/class/net/${iface}/mtu`]);
  const mtu = Number(res.stdout.trim());
  if (res.exitCode !== 0 || !Number.isInteger(mtu)) throw new BenchError(`cannot read the MTU of ${iface} on ${host}: ${res.stderr.trim()}`);
  return mtu;
}

runMain(main, say);
