/**
 * Outage benchmark: fail static through one long control-plane outage (issue 18 item 4, the
 * 10-minute variant of test/e2e/outage.test.ts's 60 s outages). On its own lab (prefix `wob`):
 * four hosts (aws-1, gcp-1, gcp-2 standing by as gcp's second gateway, onprem-1 behind NAT and
 * gateway of its LAN), the single controller; its process and its embedded nats-server frozen
 * (SIGSTOP, default) or killed (SIGKILL, `--kind kill`, then restarted on the same state) for
 * `--seconds` (default 600), the hosts cut off its NATS port until 5 s after it answers again.
 * The scenario is test/e2e/outage.ts; the figures: pings sent/lost per
 * pair of hosts and to each site router (every 0.2 s from before the outage to two offline
 * periods after the return), nodes not online or removed after, gateway changes, data-plane
 * changes, controller log lines that moved a node or a route, time until the API answers and every
 * agent is back in sync, and the time a policy change made after the return takes to reach every
 * agent. Prints them and writes bench-results/outage-<timestamp>.json (+ outage-latest.json).
 *
 *   sudo npm run bench -- outage [--seconds 600] [--kind freeze|kill]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { LabCluster, LabOptions } from "@weft/lab";
import { describeOutage, outageLabDown, outageLabUp, runOutage, type OutageFigures } from "../e2e/outage.js";
import { BenchError } from "./src/errors.js";
import { describeMachine, type Machine } from "./src/report.js";
import { runMain } from "./src/run-main.js";

const USAGE = `usage: npm run bench -- outage [options]   (needs root)

  --seconds <s>        how long the control plane is out (default 600)
  --kind freeze|kill   SIGSTOP then SIGCONT (default), or SIGKILL then a restart on the same state
  --keep-logs          keep the lab's logs and agent state (they are kept anyway when it fails)
  --out <dir>          where results go (default <repo>/bench-results)
`;

const OUTAGE_SCHEMA = "weft.bench.outage/v1";
const opts: LabOptions = { prefix: "wob" };
const repoRoot = (): string => resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const say = (line: string) => process.stderr.write(`${line}\n`);

interface OutageBenchResult {
  schema: typeof OUTAGE_SCHEMA;
  date: string;
  machine: Machine;
  /** Lab set-up until the full mesh with both site gateways in place. */
  setupMs: number;
  /** The met/not-met summary: 0 lost, nothing offline or removed, no gateway or route moved. */
  failStatic: boolean;
  outage: OutageFigures;
}

function parseSettings(argv: string[]): { seconds: number; kind: "freeze" | "kill"; keepLogs: boolean; out: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: "string", default: "600" },
      kind: { type: "string", default: "freeze" },
      "keep-logs": { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const seconds = Number(values.seconds);
  if (!Number.isInteger(seconds) || seconds < 5 || seconds > 7200) throw new BenchError(`--seconds ${values.seconds}: want an integer in 5..7200`);
  if (values.kind !== "freeze" && values.kind !== "kill") throw new BenchError(`--kind ${values.kind}: want freeze or kill`);
  return { seconds, kind: values.kind, keepLogs: values["keep-logs"], out: resolve(values.out ?? join(repoRoot(), "bench-results")) };
}

async function main(): Promise<number> {
  const s = parseSettings(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new BenchError("needs root (network namespaces, WireGuard); run: sudo npm run bench -- outage");
  let cluster: LabCluster | undefined;
  let failed = true;
  const onSignal = () => {
    say("weft bench: interrupted; tearing the lab down");
    void outageLabDown({ opts, cluster }, false).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const t0 = Date.now();
    say(`==> outage benchmark: lab ${opts.prefix}, 4 hosts, control plane ${s.kind === "freeze" ? "frozen (SIGSTOP)" : "killed (SIGKILL)"} for ${s.seconds} s`);
    const lab = await outageLabUp(opts, (l) => say(`    ${l}`));
    cluster = lab.cluster;
    const setupMs = Date.now() - t0;
    const outage = await runOutage(lab, s.kind, s.seconds, (l) => say(`    ${l}`));
    const failStatic = outage.pingsLost === 0 && outage.offlineAfter.length === 0 && outage.removedAfter.length === 0 && outage.gatewayChanges.length === 0 && outage.dataPlaneChanges.length === 0 && outage.controllerMoves.length === 0;
    const result: OutageBenchResult = { schema: OUTAGE_SCHEMA, date: new Date().toISOString(), machine: describeMachine(repoRoot()), setupMs, failStatic, outage };
    await mkdir(s.out, { recursive: true });
    const path = join(s.out, `outage-${result.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-")}.json`);
    const text = `${JSON.stringify(result, null, 2)}\n`;
    await writeFile(path, text);
    await writeFile(join(s.out, "outage-latest.json"), text);
    process.stdout.write(`${describeOutage(outage).join("\n")}\nfail static: ${failStatic ? "held" : "BROKEN"}\nwrote ${path}\n`);
    failed = !failStatic;
    return failStatic ? 0 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    const keep = failed || s.keepLogs;
    await outageLabDown({ opts, cluster }, keep);
    if (keep && cluster) say(`logs kept in ${cluster.logDir}`);
  }
}

runMain(main, say);
