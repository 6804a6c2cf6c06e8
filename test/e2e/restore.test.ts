/**
 * End-to-end test of backup and restore with live agents (issue 18 item 6), on the fail-static lab
 * of outage.ts (4 hosts: aws-1, gcp-1, gcp-2 standing by as gcp's second gateway, onprem-1 behind
 * NAT and gateway of its LAN; one controller with its embedded NATS). In order, under pings every
 * 0.2 s across all 12 ordered pairs of hosts and to the site routers:
 *
 *   1. `weft controller backup <dir>/` of the running control plane (a policy in place);
 *   2. a change after the backup (the policy deleted: every agent applies it), which the backup
 *      does not hold — as after any real backup, the store moves on;
 *   3. the controller and its nats-server SIGKILLed and its whole state directory (authority, CAs,
 *      tokens, the NATS store) removed; every agent sees the control plane gone;
 *   4. `weft controller restore <dir>/` into the fresh (empty) state directory, and the controller
 *      started on it;
 *
 * then: every agent connected and in sync again on its ORIGINAL credentials (node id, NATS seed,
 * user JWT, WireGuard key, enrolledAt unchanged; no enrollment in its log), having applied the
 * restored policy (the change made after the backup undone: the restored records count as newer
 * than anything an agent applied); the node list, policies, gateways and every host's routes and
 * peers' allowed IPs as before the backup; for two offline periods after the restart every node
 * online, none removed, no gateway moved, no controller log line moving a node or a route; 0 pings
 * lost. Finally a policy change and a node deletion made after the restore reach every agent.
 *
 * One lab (prefix `wrs`, override with WEFT_E2E_RESTORE_PREFIX). Needs root; skipped otherwise.
 * About 1.5 min on 2 busy cores: 25 s of set-up, 10 s of backup, 15 s of restore, 32 s of watching.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { CONTROLLER_NATS_PORT, killControlPlane, labDir, labExec, type LabOptions } from "@weft/lab";
import type { NodeView } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { logMessages, logOffset, logSince, readAgentState, readAgentStatus, sleep, waitUntil, wgDump } from "./mesh.js";
import {
  MOVED_MESSAGES,
  OUTAGE_HOSTS,
  controllerLogTail,
  dataPlane,
  gateways,
  outageCluster,
  outageSetup,
  startOutagePings,
  togglePolicy,
  watchJudgements,
  WATCH_MS,
  type OutageLab,
  type OutagePings,
  type PairFigures,
} from "./outage.js";
import { labSuite } from "./lab-suite.js";

const PREFIX = process.env.WEFT_E2E_RESTORE_PREFIX ?? "wrs";
const opts: LabOptions = { prefix: PREFIX };
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("e2e restore: skipped: needs root (network namespaces, WireGuard)");

const suite = labSuite("restore", opts);
const { note } = suite;

/** What makes an agent the node it enrolled as: ids, keys and credentials (key files hashed). */
interface AgentIdentity {
  nodeId: string;
  enrolledAt: string;
  userJwt: string;
  natsSeedSha256: string;
  wireguardKeySha256: string;
}

/** The parts of a node record a restore must keep exactly. */
const nodeShape = (n: NodeView) => ({ nodeId: n.nodeId, name: n.name, site: n.site, overlayAddress: n.overlayAddress, wireguardPublicKey: n.wireguardPublicKey, natsPublicKey: n.natsPublicKey, workloadPrefix: n.workloadPrefix, labels: n.labels, enrolledAt: n.enrolledAt });

describe.skipIf(!isRoot)("e2e restore", () => {
  let lab: OutageLab | undefined;
  let pings: OutagePings | undefined;
  const backupDir = () => join(labDir(opts), "backup");

  // Before the backup, what the restore must bring back.
  let identities: Map<string, AgentIdentity>;
  let nodesBefore: NodeView[];
  let policiesBefore: string;
  let gatewaysBefore: Record<string, string | null>;
  let planeBefore: Map<string, string>;
  let policyEntriesBefore: Map<string, number>;
  /** Agent log sizes at the backup: nothing after it may be an enrollment. */
  let agentLogsFrom: Map<string, number>;
  let controllerLogFrom = 0;
  /** Each agent's policy revision after the change made after the backup. */
  let revisionsAfterBackup: Map<string, number>;
  let restartedAt = 0;

  const cluster = () => lab!.cluster;
  const stateDirOf = (h: string) => cluster().agents.get(h)!.stateDir;
  const sha256File = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");
  const identityOf = async (h: string): Promise<AgentIdentity> => {
    const s = await readAgentState(stateDirOf(h));
    if (!s) throw new Error(`${h}: no state.json`);
    return { nodeId: s.nodeId, enrolledAt: s.enrolledAt, userJwt: s.nats.userJwt, natsSeedSha256: await sha256File(join(stateDirOf(h), "nats.seed")), wireguardKeySha256: await sha256File(join(stateDirOf(h), "wireguard.key")) };
  };
  const policyRevisions = async () => new Map(await Promise.all(OUTAGE_HOSTS.map(async (h) => [h, (await readAgentStatus(stateDirOf(h)))?.policyRevision ?? -1] as const)));
  /** Runs `weft controller …` in the controller's namespace (its embedded NATS listens on the namespace's loopback). */
  const weftController = async (args: string[]) => {
    const t0 = Date.now();
    const res = await labExec(opts, "ctl", [process.execPath, cluster().cli, "controller", ...args, "--state-dir", cluster().controllerStateDir, "--json"], { timeoutMs: 120_000 });
    if (res.exitCode !== 0) throw new Error(`weft controller ${args.join(" ")}: exit ${res.exitCode}: ${res.stderr.trim().split("\n").slice(-5).join(" | ")}`);
    return { ms: Date.now() - t0, result: JSON.parse(res.stdout) as unknown };
  };

  suite.hooks({
    cluster: () => outageCluster(opts),
    setup: async (c) => {
      lab = await outageSetup(c, opts, note);
      // A policy to back up: every agent applies it first.
      const before = await policyRevisions();
      await togglePolicy(lab.client);
      await waitUntil("every agent applies the policy made before the backup", 30_000, async () => [...(await policyRevisions())].every(([h, r]) => r > before.get(h)!), 100);
    },
    teardown: async () => {
      await pings?.stop().catch(() => undefined);
    },
    setupTimeoutMs: 300_000,
    teardownTimeoutMs: 60_000,
  });

  it("e2e restore - a backup of the running control plane with live agents, then a change it does not hold", async () => {
    const l = lab!;
    identities = new Map(await Promise.all(OUTAGE_HOSTS.map(async (h) => [h, await identityOf(h)] as const)));
    nodesBefore = await l.client.listNodes();
    policiesBefore = JSON.stringify((await l.client.listPolicies()).sort((a, b) => a.name.localeCompare(b.name)));
    gatewaysBefore = await gateways(l);
    planeBefore = new Map(await Promise.all(OUTAGE_HOSTS.map(async (h) => [h, await dataPlane(l, h)] as const)));
    policyEntriesBefore = new Map(await Promise.all(OUTAGE_HOSTS.map(async (h) => [h, (await readAgentStatus(stateDirOf(h)))?.policyEntries ?? -1] as const)));
    agentLogsFrom = new Map(await Promise.all(OUTAGE_HOSTS.map(async (h) => [h, await logOffset(cluster().agents.get(h)!.logPath)] as const)));
    controllerLogFrom = await logOffset(join(cluster().logDir, "controller.log"));
    expect(nodesBefore.map((n) => n.name).sort(), "nodes before the backup").toEqual([...OUTAGE_HOSTS].sort());
    expect([...policyEntriesBefore.values()].every((n) => n > 0), `policy entries per agent before the backup: ${JSON.stringify([...policyEntriesBefore])}`).toBe(true);

    pings = startOutagePings(l);
    await sleep(3000);
    const backup = await weftController(["backup", `${backupDir()}/`, "--nats-port", String(CONTROLLER_NATS_PORT)]);
    const streams = (backup.result as { streams: { stream: string; messages: number; bytes: number }[] }).streams;
    const size = Number((await labExec(opts, "ctl", ["du", "-sb", backupDir()])).stdout.split(/\s+/)[0]);
    note(`backup: ${streams.length} buckets, ${streams.reduce((n, s) => n + s.messages, 0)} records, ${size} bytes on disk, ${backup.ms} ms (the CLI's whole run, process start included)`);
    expect(size, "bytes of the backup directory").toBeGreaterThan(0);

    // The store moves on after the backup: the policy deleted, every agent applies that.
    const before = await policyRevisions();
    await togglePolicy(l.client);
    await waitUntil("every agent applies the change made after the backup", 30_000, async () => [...(await policyRevisions())].every(([h, r]) => r > before.get(h)!), 100);
    revisionsAfterBackup = await policyRevisions();
    const entries = await Promise.all(OUTAGE_HOSTS.map(async (h) => (await readAgentStatus(stateDirOf(h)))?.policyEntries));
    note(`after the backup: policy deleted, every agent applied it (policy revisions ${JSON.stringify(Object.fromEntries(revisionsAfterBackup))}, entries ${JSON.stringify(entries)})`);
  }, 120_000);

  it("e2e restore - the controller and its NATS state destroyed, the backup restored into a fresh state directory: every agent back on its original credentials with the restored state, nothing judged offline, no ping lost", async () => {
    const l = lab!;
    const stateDir = cluster().controllerStateDir;
    const pids = await killControlPlane(cluster());
    await rm(stateDir, { recursive: true, force: true });
    expect(existsSync(stateDir), `${stateDir} after the removal`).toBe(false);
    const goneAt = Date.now();
    await waitUntil("every agent sees the control plane gone", 30_000, async () => {
      for (const h of OUTAGE_HOSTS) if ((await readAgentStatus(stateDirOf(h)))?.nats === "connected") return false;
      return true;
    }, 200);
    note(`destroyed: controller ${pids.controller} and nats-server ${pids.nats} SIGKILLed, ${stateDir} removed; every agent disconnected after ${Date.now() - goneAt} ms`);

    const restore = await weftController(["restore", `${backupDir()}/`]);
    const restored = restore.result as { streams: { stream: string; messages: number; lastSeq: number }[]; files: string[] };
    restartedAt = Date.now();
    await cluster().startController();
    l.client = await cluster().client({ timeoutMs: 5000 });
    const apiMs = Date.now() - restartedAt;
    // Two offline periods from the moment the restored controller answers.
    const watch = watchJudgements(l, nodesBefore, gatewaysBefore, restartedAt, { until: Date.now() + WATCH_MS });

    // Every agent connected, in sync since the restart, and on the restored policy (the change made after the backup undone).
    const syncedMs = await waitUntil("every agent connected, in sync and on the restored policy", 90_000, async () => {
      for (const h of OUTAGE_HOSTS) {
        const s = await readAgentStatus(stateDirOf(h));
        if (s?.nats !== "connected" || s.stale || !s.lastSyncAt || Date.parse(s.lastSyncAt) < restartedAt) return false;
        if (s.policyRevision <= revisionsAfterBackup.get(h)! || s.policyEntries !== policyEntriesBefore.get(h)) return false;
      }
      return true;
    }, 100).catch(async (err: Error) => {
      const states = await Promise.all(OUTAGE_HOSTS.map(async (h) => `${h}=${JSON.stringify(await readAgentStatus(stateDirOf(h)))}`));
      throw new Error(`${err.message}; policy revisions after the backup's change ${JSON.stringify(Object.fromEntries(revisionsAfterBackup))}; status files: ${states.join("; ")}`);
    });
    note(
      `restore: ${restored.streams.length} buckets and ${restored.files.length} state files in ${restore.ms} ms (CLI run); controller API ${apiMs} ms after it; every agent connected and in sync on the restored policy ${syncedMs + apiMs} ms after the restore (${Date.now() - goneAt} ms after the destruction)`,
    );

    // The same agents: nothing re-enrolled, every credential as it was.
    for (const h of OUTAGE_HOSTS) {
      expect(await identityOf(h), `${h}: node id, enrolledAt, user JWT, NATS seed and WireGuard key after the restore`).toEqual(identities.get(h));
      const enrolled = logMessages(await logSince(cluster().agents.get(h)!.logPath, agentLogsFrom.get(h)!)).filter((m) => /enroll/i.test(m));
      expect(enrolled, `${h}: agent log lines about enrolling since the backup`).toEqual([]);
    }
    const nodesAfter = await l.client.listNodes();
    expect(nodesAfter.map(nodeShape).sort((a, b) => a.name.localeCompare(b.name)), "nodes after the restore").toEqual(nodesBefore.map(nodeShape).sort((a, b) => a.name.localeCompare(b.name)));
    expect(JSON.stringify((await l.client.listPolicies()).sort((a, b) => a.name.localeCompare(b.name))), "policies after the restore (as backed up)").toBe(policiesBefore);
    for (const h of OUTAGE_HOSTS) expect(await dataPlane(l, h), `${h}: routes into its interface and its peers' allowed IPs after the restore`).toBe(planeBefore.get(h));

    const judged = await watch;
    const { pings: pairs, sitePings } = await pings!.stop();
    const all: PairFigures[] = [...pairs, ...sitePings];
    const sent = all.reduce((n, p) => n + p.sent, 0);
    const lost = all.filter((p) => p.lost > 0).map((p) => `${p.from}→${p.address}: lost ${p.lost} of ${p.sent} (icmp_seq ${p.lostSeqs.join(",")})`);
    note(`pings: ${sent} sent every 0.2 s across ${pairs.length} host pairs and ${sitePings.length} site-router probes from 3 s before the backup to ${Math.round((Date.now() - restartedAt) / 1000)} s after the restart, ${all.reduce((n, p) => n + p.lost, 0)} lost`);
    note(`after the restart (${judged.looks} looks over ${WATCH_MS / 1000} s from the API's answer): offline ${JSON.stringify(judged.offline)}, removed ${JSON.stringify(judged.removed)}, gateway changes ${JSON.stringify(judged.gatewayChanges)} (gateways ${JSON.stringify(gatewaysBefore)})`);
    expect(lost, "ping streams that lost anything across backup, destruction and restore (want none)").toEqual([]);
    for (const p of all) expect(p.replies, `replies ${p.from}→${p.address}: got ${p.replies}, want more than 0`).toBeGreaterThan(0);
    expect(judged.looks, "node-list looks the restored controller answered").toBeGreaterThanOrEqual(30);
    expect(judged.offline, "nodes not online after the restart").toEqual([]);
    expect(judged.removed, "nodes removed after the restart").toEqual([]);
    expect(judged.gatewayChanges, "gateway changes after the restart").toEqual([]);
    const moves = (await logSince(join(cluster().logDir, "controller.log"), controllerLogFrom)).split("\n").filter((line) => logMessages(line).some((m) => MOVED_MESSAGES.includes(m)));
    expect(moves, `controller log lines moving a node or a route since the backup${moves.length ? `\n${await controllerLogTail(l)}` : ""}`).toEqual([]);
  }, 300_000);

  it("e2e restore - a policy change and a node deletion made after the restore reach every agent", async () => {
    const l = lab!;
    const before = await policyRevisions();
    const changeAt = Date.now();
    await togglePolicy(l.client);
    await waitUntil("every agent applies the policy change made after the restore", 30_000, async () => [...(await policyRevisions())].every(([h, r]) => r > before.get(h)!), 50);
    const policyMs = Date.now() - changeAt;

    const gone = await l.client.getNode("gcp-2");
    const deletedAt = Date.now();
    await l.client.deleteNode(gone.nodeId);
    const perHost = await Promise.all(
      OUTAGE_HOSTS.filter((h) => h !== "gcp-2").map(async (h) => {
        const ms = await waitUntil(`gcp-2's key gone from ${h}'s WireGuard`, 15_000, async () => !(await wgDump(opts, h))?.peers.some((p) => p.publicKey === gone.wireguardPublicKey), 50);
        return `${h} ${ms}`;
      }),
    );
    note(`after the restore: a policy change on every agent in ${policyMs} ms; gcp-2 deleted and gone from every other host in ${Date.now() - deletedAt} ms (${perHost.join(", ")})`);
    expect((await l.client.listNodes()).map((n) => n.name).sort(), "nodes after the deletion").toEqual(OUTAGE_HOSTS.filter((h) => h !== "gcp-2").sort());
    expect(policyMs, "a policy change after the restore reaches every agent (ms)").toBeLessThan(10_000);
  }, 60_000);
});
