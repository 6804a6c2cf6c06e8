/**
 * The relayed-path row of the overlay benchmark: one pair of hosts that are both behind NAT,
 * onprem-1 (a NAT that keeps ports) and cgnat-1 (a NAT that picks a random port per destination),
 * measured first over the relay the controller gives them (aws-2, labelled `weft:relay`), then —
 * after cgnat's NAT is switched to keeping ports, so a punched path appears — over the direct path,
 * with the same iperf3 and ping measurements as the other rows, in the same rounds. Also timed:
 * from cgnat-1's agent start to a relayed path both ways, and from the NAT change to a direct one.
 */
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { labSetNat, type LabCluster, type LabOptions } from "@weft/lab";
import { BenchError } from "./errors.js";
import { startIperfServer, stopIperfServer, measureLatency } from "./measure.js";
import { measurePath, summarizePath, compare, type PathSample, type PathSummary, type Ratio, type MeasureSettings } from "./paths.js";

export interface RelayBenchResult {
  from: string;
  to: string;
  /** The relay node's name. */
  via: string;
  /** cgnat-1's agent start → both sides report the relayed path. */
  timeToRelayMs: number;
  /** cgnat's NAT keeps ports → both sides report the direct path. */
  timeToDirectMs: number;
  relayed: PathSummary;
  direct: PathSummary;
  samples: (PathSample & { path: "relayed" | "direct" })[];
  /** relayed / direct. */
  ratio: Ratio;
}

export interface RelayBenchSettings extends Omit<MeasureSettings, "from"> {
  rounds: number;
  port: number;
}

const FROM = "onprem-1";
const TO = "cgnat-1";

/** The path `host`'s agent reports to `peer` (status.json), e.g. `relay via aws-2`. */
async function pathOf(cluster: LabCluster, host: string, peer: string): Promise<string | undefined> {
  const dir = cluster.agents.get(host)?.stateDir;
  if (!dir) return undefined;
  try {
    const status = JSON.parse(await readFile(join(dir, "status.json"), "utf8")) as { paths?: { peer: string; path: string; via?: string }[] };
    const p = status.paths?.find((x) => x.peer === peer);
    return p ? (p.path === "relay" ? `relay via ${p.via}` : p.path) : undefined;
  } catch {
    return undefined;
  }
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>, signal: AbortSignal | undefined): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    signal?.throwIfAborted();
    if (Date.now() - t0 > timeoutMs) throw new BenchError(`relay: ${what} not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - t0;
}

/** Starts cgnat-1 (onprem-1 and the relay already run), measures relayed then direct, and puts cgnat's NAT back. */
export async function measureRelay(opts: LabOptions, cluster: LabCluster, joinKey: string, relay: string, s: RelayBenchSettings, say: (line: string) => void): Promise<RelayBenchResult> {
  const both = async (want: string) => (await pathOf(cluster, FROM, TO)) === want && (await pathOf(cluster, TO, FROM)) === want;
  say(`    relay: starting ${TO} (behind a NAT that picks a port per destination)`);
  await cluster.startAgent(TO, joinKey);
  const timeToRelayMs = await until(`${FROM} <-> ${TO} relayed via ${relay}`, 300_000, () => both(`relay via ${relay}`), s.signal);
  const client = await cluster.client();
  const address = (await client.getNode(TO)).overlayAddress;
  const server = await startIperfServer(opts, TO, address, s.port);
  const samples: RelayBenchResult["samples"] = [];
  try {
    const warm = await measureLatency(opts, FROM, address, 3, 0.2);
    if (warm.received === 0) throw new BenchError(`relay: ${FROM} cannot reach ${TO} (${address}) over the relay`);
    const target = { name: "weft" as const, address, bindAddress: address, port: s.port };
    const settings = { ...s, from: FROM };
    for (let round = 0; round < s.rounds; round++) {
      say(`    relay: round ${round + 1}/${s.rounds} relayed via ${relay}`);
      samples.push({ path: "relayed", ...(await measurePath(opts, settings, target, round, 0)) });
    }
    say(`    relay: ${TO}'s NAT keeps ports from now on; waiting for the punched direct path`);
    await labSetNat(opts, "cgnat", "masquerade");
    const timeToDirectMs = await until(`${FROM} <-> ${TO} direct`, 300_000, () => both("direct"), s.signal);
    for (let round = 0; round < s.rounds; round++) {
      say(`    relay: round ${round + 1}/${s.rounds} direct`);
      samples.push({ path: "direct", ...(await measurePath(opts, settings, target, round, 0)) });
    }
    const relayed = summarizePath(samples.filter((x) => x.path === "relayed"));
    const direct = summarizePath(samples.filter((x) => x.path === "direct"));
    return { from: FROM, to: TO, via: relay, timeToRelayMs, timeToDirectMs, relayed, direct, samples, ratio: compare(relayed, direct) };
  } finally {
    await stopIperfServer(server);
    await labSetNat(opts, "cgnat", "random").catch(() => undefined);
  }
}
