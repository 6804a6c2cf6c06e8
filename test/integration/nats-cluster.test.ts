/**
 * A controller on a 3-node JetStream cluster (three real nats-servers clustered on loopback,
 * `nats.urls`, buckets at R3), with an agent that knows all three URLs:
 * - kill 1 of 3 (the one the agent is connected to): every acknowledged write is still there,
 *   writes keep working and the agent keeps receiving peer changes;
 * - kill 2 of 3: writes are refused within seconds with 503 store_unavailable naming the cause;
 * - start them again: writes work again and the agent receives them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, ControllerClient, Subjects, generateKeyPair, type EnrollResponse, type PeerRecord } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PeerWatch } from "../../agent/src/control/peer-watch.js";
import { startController, type RunningController } from "../../controller/src/controller.js";
import { kvStreamName } from "../../controller/src/nats/permissions.js";
import { CONSUMER_WAIT_MS } from "../../controller/src/store/keys.js";
import { agentIdentity, eventually } from "../../controller/src/testing.js";
import { startNatsServers, type NatsServers } from "../../controller/src/testing-nats.js";

const silent = pino({ level: process.env.WEFT_TEST_LOG ?? "silent" });

describe("controller on a 3-node NATS cluster", () => {
  let dir: string;
  let servers: NatsServers;
  let ctl: RunningController | undefined;
  let client: ControllerClient;
  let agentNc: NatsConnection | undefined;
  let watch: PeerWatch | undefined;
  let agentId = "";
  const seen = new Map<string, PeerRecord>();
  const figures: string[] = [];

  const enroll = async (name: string) => {
    const key = await client.createJoinKey({ reusable: false });
    const agent = agentIdentity(key.key, generateKeyPair().publicKey, { name });
    const res = await client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
    if (res.status !== 201) throw new Error(`enroll ${name}: got ${res.status} ${res.text}, want 201`);
    return { enrolled: res.body as EnrollResponse, seed: agent.natsSeed };
  };
  /** Starts server `i` again unless it runs (a test's cleanup, also after it failed). */
  const restart = async (i: number) => {
    if (!servers.running(i)) await servers.start(i);
  };
  const agentSees = (nodeId: string, ms: number) => eventually(() => (seen.has(nodeId) ? true : undefined), ms, 20);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-cluster-"));
    const stateDir = join(dir, "controller");
    servers = await startNatsServers(dir, stateDir, 3);
    ctl = await startController({ stateDir, nats: { urls: servers.urls, replicas: 3 }, api: { listenHost: "127.0.0.1", port: 0, socket: "" } }, silent);
    client = new ControllerClient({ url: ctl.apiUrl, adminToken: ctl.adminToken, caPem: ctl.caPem });
    const first = await enroll("agent-1");
    agentId = first.enrolled.nodeId;
    agentNc = await connect({
      servers: first.enrolled.nats.servers,
      tls: { ca: first.enrolled.nats.caPem! },
      authenticator: jwtAuthenticator(first.enrolled.nats.userJwt, first.seed),
      inboxPrefix: Subjects.inboxPrefix(agentId),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 500,
    });
    watch = new PeerWatch(agentNc, Subjects.inboxPrefix(agentId), (set) => {
      for (const [id, p] of set.peers) seen.set(id, p);
    }, silent, () => void watch?.restart());
    await watch.start();
    // As the agent does: after a reconnect, read the bucket again (writes made meanwhile were not seen live).
    void (async () => {
      for await (const s of agentNc!.status()) if (s.type === "reconnect") void watch?.restart();
    })();
  }, 90_000);

  afterAll(async () => {
    if (figures.length > 0) console.log(`cluster figures:\n  ${figures.join("\n  ")}`);
    watch?.stop();
    await agentNc?.close().catch(() => {});
    await ctl?.stop().catch(() => {});
    await servers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("cluster - agents get every server's URL, and every bucket has 3 replicas", async () => {
    const { enrolled } = await enroll("agent-urls");
    expect([...enrolled.nats.servers].sort(), "NATS servers handed to the agent").toEqual([...servers.urls].sort());
    const jsm = await jetstreamManager(ctl!.nc);
    for (const b of Object.values(Buckets)) {
      expect((await jsm.streams.info(kvStreamName(b))).config.num_replicas, `${b} replicas`).toBe(3);
    }
    expect(await agentSees(enrolled.nodeId, 5000), "the agent sees the new node").toBe(true);
  });

  it("cluster - kill 1 of 3 (the agent's server): acknowledged writes kept, writes keep working, the agent keeps receiving", async () => {
    const before = (await client.listNodes()).map((n) => n.nodeId).sort();
    const agentServer = servers.urls.findIndex((u) => agentNc!.getServer().endsWith(new URL(u).host));
    expect(agentServer, `the agent's server ${agentNc!.getServer()}`).toBeGreaterThanOrEqual(0);
    await servers.kill(agentServer);
    const killedAt = Date.now();
    try {
      // A client retries a 503 store_unavailable (retryable): a stream leader election under load can
      // outlast one request's STORE_RETRY_MS.
      let attempts = 0;
      const got = await eventually(async () => {
        attempts++;
        return enroll("after-kill-1").catch((err: unknown) => (/store_unavailable|JetStream/.test(String(err)) ? undefined : Promise.reject(err)));
      }, 25_000, 200);
      expect(got, "an enrollment after the kill (retrying 503s)").toBeDefined();
      const { enrolled } = got!;
      const writeMs = Date.now() - killedAt;
      // Its reconnect to another server and its watch's restart wait on the stream's new leader, which
      // a machine busy with other suites (the API fuzzing) can delay well past 15 s.
      expect(await agentSees(enrolled.nodeId, 30_000), "the agent receives a node enrolled after the kill").toBe(true);
      const receivedMs = Date.now() - killedAt;
      const after = (await client.listNodes()).map((n) => n.nodeId);
      for (const id of before) expect(after, `node ${id} acknowledged before the kill`).toContain(id);
      figures.push(`kill 1 of 3: first write (join key + enrollment) done ${writeMs} ms after the kill (${attempts} attempt(s)); the agent had the new peer ${receivedMs} ms after`);
    } finally {
      await restart(agentServer); // also when it failed: the next tests need all three
    }
  }, 90_000);

  it("cluster - kill the JetStream meta leader's server: the API keeps listing nodes during the election", async () => {
    const before = (await client.listNodes()).map((n) => n.nodeId).sort();
    const leader = await eventually(() => servers.metaLeader(), 20_000, 200);
    expect(leader, "a meta leader all running servers agree on").toBeDefined();
    await servers.kill(leader!);
    const killedAt = Date.now();
    try {
      const res = await client.raw("GET", "/v1/nodes");
      const listMs = Date.now() - killedAt;
      expect(res.status, `GET /v1/nodes right after the meta leader's server died: ${res.text}`).toBe(200);
      const listed = (res.body as { nodeId: string }[]).map((n) => n.nodeId).sort();
      expect(listed, "every node enrolled before the kill").toEqual(before);
      // nats-server's elections take 4–9 s (its election timeout); the listing must not wait for one.
      expect(listMs, "answered after the listing's wait for a consumer, not after the election").toBeLessThan(CONSUMER_WAIT_MS + 800);
      const metrics = (await client.raw("GET", "/metrics")).text;
      expect(metrics, "the listing counted as read from the replicas").toMatch(/weft_controller_kv_operations_total\{bucket="weft-nodes",op="list\.replicas",result="ok"\} [1-9]/);
      const elected = await eventually(() => servers.metaLeader(), 30_000, 200);
      figures.push(`kill the meta leader (n${leader! + 1}): GET /v1/nodes 200 with all ${listed.length} nodes in ${listMs} ms; a new meta leader (n${elected! + 1}) seen ${Date.now() - killedAt} ms after the kill`);
    } finally {
      await restart(leader!);
    }
  }, 90_000);

  it("cluster - kill 2 of 3: writes are refused fast with a clear error; after restart writes work and reach the agent", async () => {
    // Give the restarted server time to catch up, so two kills leave one server without quorum.
    await new Promise((r) => setTimeout(r, 3000));
    const stay = servers.urls.findIndex((u) => ctl!.nc.getServer().endsWith(new URL(u).host));
    const kills = [0, 1, 2].filter((i) => i !== stay);
    for (const i of kills) await servers.kill(i);
    const started = Date.now();
    try {
      const res = await client.raw("POST", "/v1/keys", JSON.stringify({ reusable: false }));
      const refusedMs = Date.now() - started;
      expect(res.status, `create a join key without quorum: ${res.text}`).toBe(503);
      expect((res.body as { error: string }).error, "error code").toBe("store_unavailable");
      expect((res.body as { message: string }).message, "message names the cause").toMatch(/quorum|unavailable|timeout|no responders/i);
      expect(refusedMs, "time to refuse (STORE_RETRY_MS 10 s)").toBeLessThan(12_000);
      figures.push(`kill 2 of 3: a write refused after ${refusedMs} ms: ${(res.body as { message: string }).message}`);
    } catch (err) {
      for (const i of kills) await restart(i);
      throw err;
    }
    const restartAt = Date.now();
    for (const i of kills) await servers.start(i);
    const ok = await eventually(async () => ((await client.raw("POST", "/v1/keys", JSON.stringify({ reusable: false }))).status === 201 ? true : undefined), 30_000, 250);
    expect(ok, "writes work again after the servers return").toBe(true);
    const writableMs = Date.now() - restartAt;
    const { enrolled } = await enroll("after-recovery");
    expect(await agentSees(enrolled.nodeId, 15_000), "the agent receives a node enrolled after recovery").toBe(true);
    figures.push(`recovery: writes accepted ${writableMs} ms after both servers were started again (each up before the next); the agent had a new peer ${Date.now() - restartAt} ms after`);
    expect(seen.has(agentId), "the agent still sees itself").toBe(true);
  });
});
