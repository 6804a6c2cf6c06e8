/**
 * One fleet size of the scale benchmark, start to end: a fresh controller (scale-controller.ts),
 * a join key and a policy every simulated agent is in, the fleet (scale-fleet.ts) enrolled and
 * connected, an idle minute-fraction of heartbeats, then one change at a time — a node added, the
 * same node removed, the policy changed — each timed until every agent has it, and last a NATS
 * crash and restart. Controller and nats-server usage is read from /proc around each phase.
 */
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { enroll } from "@weft/agent/control-plane";
import { generateKeyPair, type PolicyInput } from "@weft/protocol";
import { Fleet } from "./scale-fleet.js";
import { startScaleController, type ScaleController } from "./scale-controller.js";
import { cpuPercent, usage, type Usage } from "./scale-proc.js";
import type { Probe } from "./scale-protocol.js";
import { judge, latency, type ChangeBytes, type SizeResult } from "./scale-report.js";

export interface RunSettings {
  cli: string;
  agents: number;
  full: number;
  perProcess: number;
  concurrency: number;
  heapMb: number;
  idleS: number;
  changeTimeoutS: number;
  /** Write a V8 CPU profile of the controller into this directory. */
  profileDir?: string | undefined;
  /** Write a V8 CPU profile of each worker process into this directory. */
  workerProfileDir?: string | undefined;
  /** Keep the controller's log, at level info, in `out` (scale-<agents>-controller-<ms>.log); always kept when the run fails. */
  keepControllerLog?: boolean;
  /** Where the controller's log is kept. */
  out: string;
  say: (line: string) => void;
}

const BASE_PORT = 1000;
const CHANGED_PORT = 2000;

function policy(ports: number[]): PolicyInput {
  return { name: "sim", rules: [{ action: "allow", from: [{ labels: { role: "sim" } }], to: [{ labels: { role: "sim" } }], ports: ports.map((port) => ({ protocol: "tcp" as const, port })) }] };
}

/** Usage of the controller and its nats-server at one instant. */
function sample(c: ScaleController): { ctl: Usage; nats: Usage } {
  return { ctl: usage(c.pid), nats: usage(c.natsPid()) };
}

export async function runSize(s: RunSettings): Promise<SizeResult> {
  const dir = await mkdtemp(join(tmpdir(), "weft-bench-scale-"));
  let controller: ScaleController | undefined;
  let fleet: Fleet | undefined;
  try {
    controller = await startScaleController({ cli: s.cli, dir, apiPort: await freePort(), natsPort: await freePort(), profileDir: s.profileDir, logLevel: s.keepControllerLog ? "info" : undefined });
    const c = controller;
    const { client } = c;
    const simKey = await client.createJoinKey({ reusable: true, ttlSeconds: 86_400, description: "scale bench agents", labels: { role: "sim", "weft:namespace": "bench", "weft:serviceaccount": "sim" } });
    const probeKey = await client.createJoinKey({ reusable: true, ttlSeconds: 86_400, description: "scale bench probe node", labels: { role: "probe", "weft:namespace": "bench", "weft:serviceaccount": "probe" } });
    await client.applyPolicy(policy([BASE_PORT]));
    fleet = new Fleet({ agents: s.agents, perProcess: s.perProcess, full: s.full, apiUrl: c.apiUrl, caHash: c.caHash, joinKey: simKey.key, concurrency: s.concurrency, heapMb: s.heapMb, profileDir: s.workerProfileDir });
    const f = fleet;
    const workers = Math.ceil(s.agents / s.perProcess);

    s.say(`==> ${s.agents} agents (${s.full} with the full peers watch) in ${workers} worker processes: enrolling`);
    const u0 = sample(c);
    const t0 = performance.now();
    const enrolled = await f.enroll();
    const enrollWallS = (performance.now() - t0) / 1000;
    const u1 = sample(c);
    const okCount = enrolled.times.filter((t) => Number.isFinite(t)).length;
    s.say(`    ${okCount} enrolled in ${enrollWallS.toFixed(1)} s (${(okCount / enrollWallS).toFixed(1)}/s), ${enrolled.failures.length} failed${enrolled.failures[0] ? `: ${enrolled.failures[0]}` : ""}`);
    if (okCount < s.agents) throw new Error(`${s.agents - okCount} of ${s.agents} enrollments failed; first: ${enrolled.failures[0] ?? "?"}`);

    s.say("==> connecting every agent (initial sync)");
    const connected = await f.connect();
    const u2 = sample(c);
    const sync = latency(connected.syncMs);
    s.say(`    synced: p50 ${sync.p50Ms.toFixed(0)} ms, p99 ${sync.p99Ms.toFixed(0)} ms, max ${sync.maxMs.toFixed(0)} ms; ${connected.failures.length} failed${connected.failures[0] ? `: ${connected.failures[0]}` : ""}`);

    s.say(`==> idle ${s.idleS} s (heartbeats every few seconds from every agent)`);
    const v0 = await c.varz();
    const u3 = sample(c);
    const i0 = performance.now();
    await new Promise((r) => setTimeout(r, s.idleS * 1000));
    const v1 = await c.varz();
    const u4 = sample(c);
    const idleOutPerS = (v1.outBytes - v0.outBytes) / ((performance.now() - i0) / 1000);
    s.say(`    nats-server: ${v1.connections} connections, ${(idleOutPerS / 1024).toFixed(1)} KiB/s out while idle`);

    const timeoutMs = s.changeTimeoutS * 1000;
    const change = async (name: string, probe: Probe, act: () => Promise<void>) => {
      const va = await c.varz();
      const sa = await f.stats();
      const ta = performance.now();
      const r = await f.until(probe, act, timeoutMs);
      const vb = await c.varz();
      const sb = await f.stats();
      const seconds = (performance.now() - ta) / 1000;
      const lat = latency(r.latenciesMs);
      const natsOutBytes = vb.outBytes - va.outBytes - idleOutPerS * seconds;
      const bytes: ChangeBytes = { natsOutBytes, natsOutBytesPerAgent: natsOutBytes / s.agents, agentsInBytes: sb.inBytes - sa.inBytes, agentsInBytesPerAgent: (sb.inBytes - sa.inBytes) / s.agents };
      s.say(`    ${name}: the API answered after ${r.changedMs.toFixed(0)} ms; every agent had it: p50 ${lat.p50Ms.toFixed(0)} ms, p99 ${lat.p99Ms.toFixed(0)} ms, max ${lat.maxMs.toFixed(0)} ms, ${lat.missing} missing; agents received ${bytes.agentsInBytesPerAgent.toFixed(0)} B each; NATS out ${(natsOutBytes / 1024).toFixed(0)} KiB net of the idle rate (noisy when the change is small next to the heartbeats)`);
      return { lat, bytes, apiMs: r.changedMs };
    };

    s.say("==> one node added, then removed, then the policy changed");
    let probeNodeId = "";
    const probeName = `probe-${s.agents}`;
    const added = await change("node added", { kind: "peerNamed", name: probeName }, async () => {
      const r = await enroll(c.apiUrl, { version: 1, joinKey: probeKey.key, name: probeName, site: "sim", wireguardPublicKey: generateKeyPair().publicKey, natsPublicKey: createUser().getPublicKey(), listenPort: 51820, endpoints: { public: "203.0.113.1:51820" } }, { caHash: c.caHash });
      probeNodeId = r.response.nodeId;
    });
    const removed = await change("node removed", { kind: "peerGone", nodeId: probeNodeId }, async () => {
      await client.deleteNode(probeNodeId);
    });
    const policyChanged = await change("policy change", { kind: "policyPort", port: CHANGED_PORT }, async () => {
      await client.applyPolicy(policy([BASE_PORT, CHANGED_PORT]));
    });
    const u5 = sample(c);

    s.say("==> NATS killed and restarted by the controller (reconnect storm)");
    const offlineBefore = await judgedOffline(client);
    // Until the restarted nats-server answers: the part of "reconnected" no agent can shorten.
    let natsBackMs = Number.NaN;
    const storm = await f.until(
      { kind: "resynced" },
      async () => {
        const k0 = performance.now();
        await c.restartNats();
        natsBackMs = performance.now() - k0;
      },
      Math.max(timeoutMs, 120_000),
    );
    const reconnected = latency(storm.reconnectedMs);
    const resynced = latency(storm.latenciesMs);
    const offline = (await judgedOffline(client)) - offlineBefore;
    s.say(`    nats-server back after ${natsBackMs.toFixed(0)} ms; reconnected: p50 ${reconnected.p50Ms.toFixed(0)} ms, p99 ${reconnected.p99Ms.toFixed(0)} ms; resynced p99 ${resynced.p99Ms.toFixed(0)} ms; ${resynced.missing} missing; connections now ${JSON.stringify(storm.natsStates)}; ${offline} nodes judged offline meanwhile`);
    const uEnd = sample(c);
    const sim = await f.stats();

    const proc = (k: "ctl" | "nats", end: Usage) => ({
      rssMb: end.rssMb,
      hwmMb: end.hwmMb,
      cpuPercent: { enroll: cpuPercent(u0[k], u1[k]), sync: cpuPercent(u1[k], u2[k]), idle: cpuPercent(u3[k], u4[k]), changes: cpuPercent(u4[k], u5[k]) },
    });
    const fullSync = latency(connected.syncMs.filter((_, i) => connected.full[i]));
    const result = {
      agents: s.agents,
      fullAgents: s.full,
      workers,
      enrollment: { ok: okCount, failed: enrolled.failures.length, wallS: enrollWallS, ratePerS: okCount / enrollWallS, perAgent: latency(enrolled.times), failures: enrolled.failures.slice(0, 5) },
      initialSync: { ...sync, fullAgents: fullSync, failures: connected.failures.slice(0, 5) },
      nodeAddedToAll: added.lat,
      nodeRemovedToAll: removed.lat,
      policyChangeToAll: policyChanged.lat,
      reconnectStorm: { startedAt: storm.startedAt, natsBackMs, reconnected, resynced, natsStates: storm.natsStates, judgedOffline: offline },
      // From the same instant as the ...ToAll figures until the change's API call (enroll, delete, apply) answered.
      apiAnsweredMs: { nodeAdded: added.apiMs, nodeRemoved: removed.apiMs, policyChange: policyChanged.apiMs },
      bytesPerChange: { nodeAdded: added.bytes, nodeRemoved: removed.bytes, policyChange: policyChanged.bytes },
      idle: { natsOutBytesPerS: idleOutPerS },
      // The nats-server's figures are the first server's, read before the restart (the new one starts from zero).
      controller: proc("ctl", uEnd.ctl),
      nats: proc("nats", u5.nats),
      simWorkersRssMb: sim.rssMb,
    };
    return { ...result, targets: judge(result) };
  } catch (err) {
    if (controller) {
      await mkdir(s.out, { recursive: true });
      const kept = join(s.out, `scale-${s.agents}-controller-${Date.now()}.log`);
      await copyFile(controller.logPath, kept).catch(() => undefined);
      s.say(`    the controller's log: ${kept}`);
    }
    throw err;
  } finally {
    await fleet?.stop().catch(() => undefined);
    await controller?.stop().catch(() => undefined);
    if (controller && s.keepControllerLog) {
      await mkdir(s.out, { recursive: true });
      const kept = join(s.out, `scale-${s.agents}-controller-${Date.now()}.log`);
      await copyFile(controller.logPath, kept).catch(() => undefined);
      s.say(`    the controller's log: ${kept}`);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** How many times the controller has judged a node offline (its counter, `GET /v1/counters`). */
async function judgedOffline(client: ScaleController["client"]): Promise<number> {
  const r = await client.raw("GET", "/v1/counters");
  if (r.status !== 200) throw new Error(`GET /v1/counters answered ${r.status}: ${r.text.slice(0, 200)}`);
  const counters = JSON.parse(r.text) as { name: string; samples: { labels: Record<string, string>; value: number }[] }[];
  const changes = counters.find((c) => c.name === "weft_controller_node_status_changes_total");
  return changes?.samples.find((x) => x.labels.status === "offline")?.value ?? 0;
}
