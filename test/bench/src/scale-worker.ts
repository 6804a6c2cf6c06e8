/**
 * A worker process of the scale benchmark (forked by scale-fleet.ts): runs its share of the
 * simulated agents (scale-agent.ts) and answers the coordinator over the IPC channel
 * (scale-protocol.ts): enroll them all, connect them all, arm a probe and report when every agent
 * of this worker holds it (or what holds so far when asked), received-bytes totals, stop.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { SimAgent } from "./scale-agent.js";
import { now, type FleetSpec, type FromWorker, type ToWorker } from "./scale-protocol.js";

const log = pino({ level: process.env.WEFT_BENCH_SCALE_LOG ?? "silent" }, pino.destination(2));
const send = (m: FromWorker) => process.send?.(m);

let agents: SimAgent[] = [];
let spec: FleetSpec | undefined;
/** Per agent (by position), when the armed probe first held. */
let hits: number[] = [];
let armed = -1;
let pending = 0;

function onHit(agent: SimAgent, at: number): void {
  const i = agents.indexOf(agent);
  if (i < 0 || !Number.isNaN(hits[i] ?? 0)) return;
  hits[i] = at;
  if (--pending === 0) send({ type: "probeDone", id: armed, times: hits, reconnectedAt: agents.map((a) => a.reconnectedAt), natsStates: natsStates() });
}

function natsStates(): Record<string, number> {
  const n: Record<string, number> = {};
  for (const a of agents) n[a.natsState] = (n[a.natsState] ?? 0) + 1;
  return n;
}

/** Runs `job` over every agent, at most `limit` at once; failures are collected, not thrown. */
async function eachLimited(limit: number, job: (a: SimAgent) => Promise<void>): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const lane = async () => {
    while (next < agents.length) {
      const a = agents[next++] as SimAgent;
      await job(a).catch((err: unknown) => failures.push(`${a.name}: ${err instanceof Error ? err.message : String(err)}`));
    }
  };
  await Promise.all(Array.from({ length: limit }, lane));
  return failures;
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case "enroll": {
      const s = m.spec;
      spec = s;
      agents = Array.from({ length: s.count }, (_, k) => new SimAgent({ index: s.first + k, full: k < s.full, apiUrl: s.apiUrl, caHash: s.caHash, joinKey: s.joinKey, log, onHit }));
      const times = agents.map(() => Number.NaN);
      const failures = await eachLimited(s.concurrency, async (a) => {
        times[agents.indexOf(a)] = await a.enroll();
      });
      send({ type: "enrolled", times, failures });
      return;
    }
    case "connect": {
      const failures = await eachLimited(spec?.concurrency ?? 16, (a) => withTimeout(a.connect(), 300_000, `${a.name} not synced within 300 s`));
      send({ type: "connected", startedAt: agents.map((a) => a.startedAt), syncedAt: agents.map((a) => a.syncedAt), failures });
      return;
    }
    case "probe": {
      armed = m.id;
      hits = agents.map(() => Number.NaN);
      pending = agents.length;
      send({ type: "armed", id: m.id });
      for (const a of agents) a.arm(m.probe);
      return;
    }
    case "collect":
      send({ type: "collected", id: m.id, times: hits, reconnectedAt: agents.map((a) => a.reconnectedAt), natsStates: natsStates() });
      return;
    case "stats": {
      let inBytes = 0;
      let inMsgs = 0;
      for (const a of agents) {
        const s = a.stats();
        inBytes += s.inBytes;
        inMsgs += s.inMsgs;
      }
      send({ type: "stats", inBytes, inMsgs, rssMb: process.memoryUsage().rss / 1048576 });
      return;
    }
    case "stop":
      await Promise.all(agents.map((a) => a.stop()));
      send({ type: "stopped" });
      return;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

process.on("message", (m: ToWorker) => {
  handle(m).catch((err: unknown) => send({ type: "error", message: `${now().toFixed(0)}: ${err instanceof Error ? err.message : String(err)}` }));
});
process.on("disconnect", () => process.exit(0));
// Exit normally on the coordinator's SIGTERM, so that a --cpu-prof profile is written.
process.on("SIGTERM", () => process.exit(0));

// Profiled (--profile-workers): the profile's timestamps are the monotonic clock's (µs); say what
// epoch time one of them is, so that a phase of the run (epoch ms) can be cut out of the profile.
const profileDir = process.env.WEFT_BENCH_SCALE_PROFILE_DIR;
if (profileDir) {
  mkdirSync(profileDir, { recursive: true });
  writeFileSync(join(profileDir, `worker-${process.pid}-clock.json`), `${JSON.stringify({ monotonicUs: Number(process.hrtime.bigint() / 1000n), epochMs: now() })}\n`);
}
