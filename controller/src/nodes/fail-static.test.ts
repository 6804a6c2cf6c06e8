/**
 * Fail static, with a real controller and nats-server: while the controller cannot see its store
 * (its NATS connection cut by a TCP proxy: nothing forwarded, the connection left open) and the
 * agent cannot report either, a node is never judged offline — not during the outage and not after
 * it, while the agent reconnects — so no gateway moves and no route is withdrawn because of it.
 * The control: a node that stops heartbeating while the controller can see goes offline.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { ControllerClient, Subjects, generateKeyPair, type EnrollResponse } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startController, type RunningController } from "../controller.js";
import { agentIdentity, eventually } from "../testing.js";
import { startNatsServers, startTcpProxy, type NatsServers, type TcpProxy } from "../testing-nats.js";

const OUTAGE_MS = 12_000;
const OFFLINE_AFTER_S = 3;

describe("fail static - liveness across a control-plane outage", () => {
  let dir: string;
  let servers: NatsServers;
  let proxy: TcpProxy;
  let ctl: RunningController | undefined;
  let client: ControllerClient;
  const agents: { nc: NatsConnection; nodeId: string; timer?: NodeJS.Timeout }[] = [];

  const enrollAndBeat = async (name: string) => {
    const key = await client.createJoinKey({ reusable: false });
    const agent = agentIdentity(key.key, generateKeyPair().publicKey, { name });
    const res = await client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
    if (res.status !== 201) throw new Error(`enroll: got ${res.status} ${res.text}, want 201`);
    const enrolled = res.body as EnrollResponse;
    const nc = await connect({ servers: servers.urls[0]!, tls: { ca: servers.caPem }, authenticator: jwtAuthenticator(enrolled.nats.userJwt, agent.natsSeed), inboxPrefix: Subjects.inboxPrefix(enrolled.nodeId) });
    const a: (typeof agents)[number] = { nc, nodeId: enrolled.nodeId };
    const beat = () => nc.publish(Subjects.heartbeat(enrolled.nodeId), JSON.stringify({ version: 1, nodeId: enrolled.nodeId, sentAt: new Date().toISOString(), appliedRevision: 0, peers: [] }));
    beat();
    a.timer = setInterval(beat, 1000);
    agents.push(a);
    return a;
  };
  const statusOf = async (nodeId: string) => (await client.listNodes()).find((n) => n.nodeId === nodeId)?.status;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-failstatic-"));
    const stateDir = join(dir, "controller");
    servers = await startNatsServers(dir, stateDir, 1);
    proxy = await startTcpProxy(Number(new URL(servers.urls[0]!).port));
    ctl = await startController(
      { stateDir, nats: { url: `tls://127.0.0.1:${proxy.port}` }, api: { listenHost: "127.0.0.1", port: 0, socket: "" }, heartbeatSeconds: 1, offlineAfterSeconds: OFFLINE_AFTER_S },
      pino({ level: "silent" }),
    );
    client = new ControllerClient({ url: ctl.apiUrl, adminToken: ctl.adminToken, caPem: ctl.caPem });
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) {
      clearInterval(a.timer);
      await a.nc.close().catch(() => {});
    }
    await ctl?.stop().catch(() => {});
    await proxy?.close();
    await servers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("fail static - a node silent only because the control plane was unreachable is never judged offline", async () => {
    const a = await enrollAndBeat("steady");
    expect(await eventually(async () => ((await statusOf(a.nodeId)) === "online" ? true : undefined), 5000, 100), "online before the outage").toBe(true);
    // The outage: the controller cannot reach NATS, and the agent cannot report (it would be reconnecting).
    clearInterval(a.timer);
    proxy.cut();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    proxy.heal();
    const healedAt = Date.now();
    // The agent is back ~2 s later (its reconnect backoff), then heartbeats as before.
    await new Promise((r) => setTimeout(r, 2000));
    const beat = () => a.nc.publish(Subjects.heartbeat(a.nodeId), JSON.stringify({ version: 1, nodeId: a.nodeId, sentAt: new Date().toISOString(), appliedRevision: 0, peers: [] }));
    beat();
    a.timer = setInterval(beat, 1000);
    const seen = new Set<string>();
    while (Date.now() - healedAt < 8000) {
      const s = await statusOf(a.nodeId).catch(() => "api-error");
      if (s) seen.add(s);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect([...seen], `statuses after a ${OUTAGE_MS / 1000} s outage (offlineAfter ${OFFLINE_AFTER_S} s)`).toEqual(["online"]);
  }, 60_000);

  it("fail static - control: a node that stops reporting while the controller can see goes offline", async () => {
    const b = await enrollAndBeat("quits");
    expect(await eventually(async () => ((await statusOf(b.nodeId)) === "online" ? true : undefined), 5000, 100), "online first").toBe(true);
    clearInterval(b.timer);
    const offline = await eventually(async () => ((await statusOf(b.nodeId)) === "offline" ? true : undefined), (OFFLINE_AFTER_S + 3) * 1000, 200);
    expect(offline, `offline within ${OFFLINE_AFTER_S + 3} s of its last heartbeat`).toBe(true);
  }, 30_000);
});
