/**
 * Backup and restore against real nats-servers: a controller with its embedded NATS, two agents
 * enrolled, a policy; `backupController` while it runs (both layouts: a directory and one file);
 * then the agents' records written again after the backup (the store moves on: revisions the
 * backup never reached). Then a FRESH state directory and a fresh store: `restoreController`,
 * every record of every bucket equal to what was backed up (value, operation, order) at revisions
 * past the backup's, a controller started on the restored state, and the agents' original
 * credentials (JWT + nkey, no new enrollment) accepted by the new store, reading their own
 * records at revisions newer than the ones written after the backup (so an agent that applied
 * those takes the restored record). A second restore into the now non-empty target is refused
 * unless forced. The same backup restored into a fresh 3-node cluster as an operator would (state
 * files, then the servers configured from them, then the buckets at R3) holds every record.
 */
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, ControllerClient, Subjects, generateKeyPair, type EnrollResponse } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupController, restoreController, RestoreTargetNotEmptyError } from "../../controller/src/backup/index.js";
import { openStore } from "../../controller/src/backup/store.js";
import { startController } from "../../controller/src/controller.js";
import { kvStreamName } from "../../controller/src/nats/permissions.js";
import { startNatsServers, type NatsServers } from "../../controller/src/testing-nats.js";
import { NodePolicyWatch } from "../../agent/src/control/policy-watch.js";
import { agentIdentity, eventually, startTestController, type TestController } from "../../controller/src/testing.js";

const silent = pino({ level: process.env.WEFT_TEST_LOG ?? "silent" });

type Records = Map<string, { revision: number; value: string; operation: string }>;

/**
 * Where a restored store differs from the backed-up records: per bucket the same keys, each with
 * the same value and operation, in the same revision order, every revision past the bucket's last
 * in the backup (advance.ts).
 */
function restoreDiff(before: Map<string, Records>, after: Map<string, Records>, backupLastSeq: Map<string, number>): string[] {
  const out: string[] = [];
  for (const [bucket, records] of before) {
    const got = after.get(bucket) ?? new Map();
    if ([...got.keys()].sort().join() !== [...records.keys()].sort().join()) out.push(`${bucket}: keys ${[...got.keys()].sort().join()}, want ${[...records.keys()].sort().join()}`);
    const last = backupLastSeq.get(kvStreamName(bucket)) ?? Number.POSITIVE_INFINITY;
    for (const [key, want] of records) {
      const g = got.get(key);
      if (!g || g.value !== want.value || g.operation !== want.operation) out.push(`${bucket}/${key}: got ${JSON.stringify(g)}, want value and operation of ${JSON.stringify(want)}`);
      else if (g.revision <= last) out.push(`${bucket}/${key}: revision ${g.revision}, want past the backup's last ${last}`);
    }
    const order = (r: Records) => [...records.keys()].filter((k) => r.has(k)).sort((x, y) => r.get(x)!.revision - r.get(y)!.revision).join();
    if (order(got) !== order(records)) out.push(`${bucket}: revision order ${order(got)}, want ${order(records)}`);
  }
  return out;
}

/** Every live key of every Weft bucket with its revision and value. */
async function allRecords(nc: NatsConnection): Promise<Map<string, Records>> {
  const kvm = new Kvm(nc);
  const out = new Map<string, Records>();
  for (const bucket of Object.values(Buckets)) {
    const kv = await kvm.open(bucket);
    const records: Records = new Map();
    for await (const key of await kv.keys()) {
      const e = await kv.get(key);
      if (e) records.set(key, { revision: e.revision, value: Buffer.from(e.value).toString("base64"), operation: e.operation });
    }
    out.set(bucket, records);
  }
  return out;
}

describe("backup - restore into a fresh store", () => {
  let dir: string;
  let ctl: TestController | undefined;
  const agents: { enrolled: EnrollResponse; seed: Uint8Array }[] = [];
  let before: Map<string, Records>;
  /** Last revision of each stream in the backup. */
  let backupLastSeq: Map<string, number>;
  /** Each agent's node-policy revision written after the backup (what the agent would hold). */
  const writtenAfterBackup = new Map<string, number>();
  let cluster: NatsServers | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-backup-"));
    ctl = await startTestController({}, { stateDir: join(dir, "a") });
    const key = await ctl.client.createJoinKey({ reusable: true, labels: { app: "web" } });
    for (const name of ["web-1", "web-2"]) {
      const agent = agentIdentity(key.key, generateKeyPair().publicKey, { name });
      const res = await ctl.client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
      if (res.status !== 201) throw new Error(`enroll ${name}: got ${res.status} ${res.text}, want 201`);
      agents.push({ enrolled: res.body as EnrollResponse, seed: agent.natsSeed });
    }
    await ctl.client.applyPolicy({ name: "web-to-web", rules: [{ action: "allow", from: [{ labels: { app: "web" } }], to: [{ labels: { app: "web" } }] }] });
  }, 60_000);

  afterAll(async () => {
    await ctl?.stop().catch(() => {});
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("backup - every bucket and the state files, in both layouts, files 0600", async () => {
    const running = ctl!.running;
    const port = Number(new URL(running.natsUrl).port);
    const direct = await openStore({ stateDir: join(dir, "a"), embeddedPort: port, log: silent }, false);
    // Wait for the leader to publish both nodes' policies, then quiet it so the records read now are the ones snapshotted.
    const nodePolicies = await new Kvm(direct.nc).open(Buckets.nodePolicies);
    const published = await eventually(async () => ((await nodePolicies.get(agents[0]!.enrolled.nodeId)) && (await nodePolicies.get(agents[1]!.enrolled.nodeId)) ? true : undefined), 10_000);
    expect(published, "node policies published before the backup").toBe(true);
    await ctl!.running.election.stop();
    before = await allRecords(direct.nc);
    await direct.close();
    const asDir = await backupController({ stateDir: join(dir, "a"), embeddedPort: port, path: join(dir, "backup") + "/", log: silent });
    const asFile = await backupController({ stateDir: join(dir, "a"), embeddedPort: port, path: join(dir, "backup.json"), log: silent });
    expect(asDir.layout, "layout of a path ending in /").toBe("directory");
    expect(asFile.layout, "layout of a file path").toBe("file");
    expect(asDir.streams.length, "buckets in the backup").toBe(Object.values(Buckets).length);
    for (const want of ["authority/authority.json", "tls/ca.crt", "tls/ca.key", "spiffe/ca.key", "admin-token"]) expect(asDir.files, `state files: want ${want}`).toContain(want);
    expect(asFile.streams.map((s) => s.lastSeq), "both layouts hold the same revisions").toEqual(asDir.streams.map((s) => s.lastSeq));
    const modes = [(await stat(join(dir, "backup.json"))).mode & 0o777];
    for (const sub of ["streams", "state/authority", "state/tls"]) for (const f of await readdir(join(dir, "backup", sub))) modes.push((await stat(join(dir, "backup", sub, f))).mode & 0o777);
    expect(new Set(modes), "modes of every backup file").toEqual(new Set([0o600]));
    const nodes = before.get(Buckets.nodes)!;
    expect(nodes.size, "nodes backed up").toBe(2);
    backupLastSeq = new Map(asDir.streams.map((s) => [s.stream, s.lastSeq]));
    // The store moves on after the backup: each agent's compiled policy written again, several times
    // (revisions the restored bucket never reaches; an agent would have applied them).
    const after = await openStore({ stateDir: join(dir, "a"), embeddedPort: port, log: silent }, false);
    try {
      const kv = await new Kvm(after.nc).open(Buckets.nodePolicies);
      for (let i = 0; i < 5; i++) {
        for (const a of agents) {
          const e = await kv.get(a.enrolled.nodeId);
          writtenAfterBackup.set(a.enrolled.nodeId, await kv.put(a.enrolled.nodeId, e!.value));
        }
      }
    } finally {
      await after.close();
    }
    await ctl!.stop();
    ctl = undefined;
  }, 60_000);

  it("restore - a fresh store holds every record past the backup's revisions, and agents come back with their credentials and take the restored records as newer", async () => {
    const fresh = join(dir, "b");
    const result = await restoreController({ stateDir: fresh, path: join(dir, "backup.json"), log: silent });
    expect(result.replaced, "buckets replaced in a fresh store").toEqual([]);
    const check = await openStore({ stateDir: fresh, log: silent }, true);
    let after: Map<string, Records>;
    try {
      after = await allRecords(check.nc);
    } finally {
      await check.close();
    }
    expect(restoreDiff(before, after, backupLastSeq), "records that differ from the backup (value, operation, order) or sit at a revision not past it").toEqual([]);
    for (const s of result.streams) expect(s.backupLastSeq, `${s.stream}: last revision in the backup, as the restore reports it`).toBe(backupLastSeq.get(s.stream));

    // A controller on the restored state; agents connect with the JWT and nkey they had.
    const restored = await startController({ stateDir: fresh, nats: { listenHost: "127.0.0.1", port: 0 }, api: { listenHost: "127.0.0.1", port: 0, socket: "" } }, silent);
    try {
      for (const a of agents) {
        const nodeId = a.enrolled.nodeId;
        const nc = await connect({
          servers: restored.natsUrl,
          tls: { ca: restored.natsCaPem },
          authenticator: jwtAuthenticator(a.enrolled.nats.userJwt, a.seed),
          inboxPrefix: Subjects.inboxPrefix(nodeId),
          maxReconnectAttempts: 0,
        });
        try {
          expect(restored.natsCaPem, "the CA the agent pinned").toBe(a.enrolled.nats.caPem);
          // As the agent reads its compiled policy (direct get of its own key): newer than what it
          // applied, including the revisions written after the backup, so it takes the restored record.
          const got: number[] = [];
          const watch = new NodePolicyWatch(nc, nodeId, (_r, revision) => void got.push(revision), silent);
          await watch.start();
          await eventually(() => (got.some((r) => r > 0) ? true : undefined), 5000);
          watch.stop();
          const had = writtenAfterBackup.get(nodeId)!;
          expect(had, `${nodeId}: revision written after the backup, past the backup's ${backupLastSeq.get(kvStreamName(Buckets.nodePolicies))}`).toBeGreaterThan(backupLastSeq.get(kvStreamName(Buckets.nodePolicies))!);
          expect(Math.max(0, ...got), `${nodeId}: revision of its policy from the restored store (it applied ${had} after the backup)`).toBeGreaterThan(had);
        } finally {
          await nc.close();
        }
      }
      const nodes = await new ControllerClient({ url: restored.apiUrl, adminToken: restored.adminToken, caPem: restored.caPem }).listNodes();
      expect(nodes.map((n) => n.nodeId).sort(), "nodes the restored controller lists").toEqual(agents.map((a) => a.enrolled.nodeId).sort());
      expect(restored.adminToken, "the admin token is restored").toBeTruthy();
    } finally {
      await restored.stop();
    }
  }, 90_000);

  it("restore - into a fresh 3-node cluster at R3, as an operator does it (files, then the servers, then the buckets)", async () => {
    const stateDir = join(dir, "c");
    const clusterDir = join(dir, "cluster");
    // 1. No server trusts the restored authority yet: the files are written, the store is refused with a hint.
    const first = await restoreController({ stateDir, urls: ["tls://127.0.0.1:1"], path: join(dir, "backup") + "/", replicas: 3, log: silent }).catch((e: unknown) => e);
    expect(String((first as Error).message), "first attempt, no server").toMatch(/cannot connect to NATS .*weft nats-config/);
    // 2. The servers are configured from the restored state directory (weft nats-config), 3. the buckets restored.
    await mkdir(clusterDir, { recursive: true });
    cluster = await startNatsServers(clusterDir, stateDir, 3);
    const result = await restoreController({ stateDir, urls: cluster.urls, path: join(dir, "backup") + "/", replicas: 3, log: silent });
    expect(result.streams.length, "buckets restored").toBe(Object.values(Buckets).length);
    const store = await openStore({ stateDir, urls: cluster.urls, log: silent }, false);
    try {
      // Reads may be served by a replica that is still catching up right after the restore: wait for it.
      const differing = async () => restoreDiff(before, await allRecords(store.nc), backupLastSeq);
      let diff = await differing();
      for (const end = Date.now() + 10_000; diff.length > 0 && Date.now() < end; diff = await differing()) await new Promise((r) => setTimeout(r, 250));
      expect(diff, "records that differ from the backup in the cluster").toEqual([]);
      const info = await store.jsm.streams.info(kvStreamName(Buckets.nodes));
      expect(info.config.num_replicas, "replicas of a restored bucket").toBe(3);
      expect(info.cluster?.replicas?.length, "peers holding it besides the leader").toBe(2);
    } finally {
      await store.close();
    }
  }, 120_000);

  it("restore - refused into a non-empty target unless forced", async () => {
    const target = join(dir, "b");
    const refused = await restoreController({ stateDir: target, path: join(dir, "backup") + "/", log: silent }).catch((e: unknown) => e);
    expect(refused, "second restore into the same store").toBeInstanceOf(RestoreTargetNotEmptyError);
    expect(String((refused as Error).message), "the refusal says what to do").toMatch(/--force/);
    const forced = await restoreController({ stateDir: target, path: join(dir, "backup") + "/", force: true, log: silent });
    expect(forced.replaced.length, "buckets replaced with --force").toBe(Object.values(Buckets).length);
  }, 60_000);
});
