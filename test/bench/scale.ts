/**
 * Scale benchmark: one real controller (the built `weft controller`, its embedded nats-server) and
 * 1,000, 5,000 and 10,000 simulated agents that are real NATS clients with their own credentials,
 * doing what an agent does on the control plane without a data plane (src/scale-agent.ts: the
 * agent's own enrollment, NATS connection, watches and heartbeats), many per worker process.
 *
 * For each size, on a fresh controller: enrollment rate; initial sync time per agent; one node
 * added, removed, and one policy change → time until every agent has it (p50/p99/max); NATS
 * bytes per change in total and per agent; controller and nats-server RSS and CPU; a NATS
 * crash → time until every agent reconnected and resynced. Targets: change to all p99 < 2 s,
 * reconnected p99 < 15 s, controller RSS < 1 GB. Loopback only; root not needed. Writes
 * bench-results/scale-<timestamp>.json and scale-latest.json.
 *
 *   npm run bench -- scale [--agents 1000] [--full-agents N] [--per-process 1250] [--idle 15] [--profile-controller] [--profile-workers]
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { describeMachine } from "./src/report.js";
import { runMain } from "./src/run-main.js";
import { raiseOpenFiles } from "./src/scale-proc.js";
import { table, type SizeResult } from "./src/scale-report.js";
import { runSize } from "./src/scale-run.js";

const say = (line: string) => process.stderr.write(`${line}\n`);
const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const SIZES = [1000, 5000, 10_000];
/** Peer records the full agents may hold in all (about 0.8 kB each once parsed): 5 M ≈ 4 GB. */
const FULL_RECORDS_BUDGET = 5_000_000;

const HELP = `npm run bench -- scale [options]
  --agents N          one fleet size (default: 1000, 5000 and 10000 in turn)
  --full-agents N     agents running the agent's full peers watch (snapshot + view of every peer);
                      the others watch policy and paths, subscribe to peer updates and heartbeat.
                      Default: all of them up to ${FULL_RECORDS_BUDGET.toLocaleString("en")} peer records in memory (N × N)
  --per-process N     simulated agents per worker process (default 1250)
  --concurrency N     enrollments and first connects in flight per worker (default 16)
  --idle S            idle seconds measured after the initial sync (default 15)
  --change-timeout S  wait for every agent to have a change at most this long (default 60)
  --out DIR           results directory (default bench-results)
  --profile-controller  also write a V8 CPU profile of the controller (CPU.*.cpuprofile) there
  --profile-workers   also write one of each worker process holding simulated agents there
  --controller-log    keep the controller's log (level info: enrollments, revocations, policy passes) there`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      agents: { type: "string" },
      "full-agents": { type: "string" },
      "per-process": { type: "string", default: "1250" },
      concurrency: { type: "string", default: "16" },
      idle: { type: "string", default: "15" },
      "change-timeout": { type: "string", default: "60" },
      out: { type: "string" },
      "profile-controller": { type: "boolean", default: false },
      "profile-workers": { type: "boolean", default: false },
      "controller-log": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const sizes = values.agents === undefined ? SIZES : [Number(values.agents)];
  const perProcess = Number(values["per-process"]);
  if (!sizes.every((n) => Number.isInteger(n) && n >= 1) || !(perProcess >= 1)) throw new Error("--agents and --per-process must be positive integers");
  const cli = join(repo, "cli", "dist", "main.js");
  if (!existsSync(cli)) throw new Error(`the weft CLI is not built at ${cli}; run npm run build`);
  const limits = raiseOpenFiles(Math.max(...sizes) + 2048);
  say(`==> scale benchmark: ${sizes.join(", ")} agents; open files ${limits.soft}; load average ${loadavg()[0]?.toFixed(1)}`);
  const out = resolve(values.out ?? join(repo, "bench-results"));
  // The checkout as it was built and started, not as it is when a run of half an hour ends.
  const machine = describeMachine(repo);
  const results: SizeResult[] = [];
  for (const agents of sizes) {
    const full = values["full-agents"] === undefined ? Math.min(agents, Math.floor(FULL_RECORDS_BUDGET / agents)) : Math.min(agents, Number(values["full-agents"]));
    results.push(
      await runSize({ cli, agents, full, perProcess, concurrency: Number(values.concurrency), heapMb: 8192, idleS: Number(values.idle), changeTimeoutS: Number(values["change-timeout"]), out, profileDir: values["profile-controller"] ? out : undefined, workerProfileDir: values["profile-workers"] ? out : undefined, keepControllerLog: values["controller-log"], say }),
    );
  }
  const result = { schema: "weft.bench.scale/v1", date: new Date().toISOString(), machine, loadAverage: loadavg(), results };
  await mkdir(out, { recursive: true });
  const stamp = result.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  const text = `${JSON.stringify(result, null, 2)}\n`;
  await writeFile(join(out, `scale-${stamp}.json`), text);
  await writeFile(join(out, "scale-latest.json"), text);
  process.stdout.write(`\ncontrol plane at scale (real controller + embedded nats-server, simulated agents as real NATS clients)\n${table(results)}\nresults: ${join(out, `scale-${stamp}.json`)}\n`);
  return 0;
}

runMain(main, say);
