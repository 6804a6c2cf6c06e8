/**
 * NodePathsWatch (agent/src/control/paths-watch.ts) on this node's key of weft-node-paths, against
 * a real controller's embedded NATS, connected as the restricted agent user an enrollment hands
 * out (no consumer permission at all): the first read (no plan yet), a plan and its next round,
 * a record naming another node ignored, a deletion; and the same user cannot read another node's
 * plan (its direct get and its key subscription are refused). The test writes the keys itself,
 * through the controller's own connection (the controller's coordinator is not involved).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { startController, type RunningController } from "@weft/controller";
import { Buckets, Subjects, silentLogger, type NodePathsRecord } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodePathsWatch } from "../../agent/src/control/paths-watch.js";

const NODE = "n-00000000000c0001";
const PEER = "n-00000000000c0002";
let stateDir: string;
let controller: RunningController | undefined;
let kv: KV;
let nc: NatsConnection | undefined;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "weft-pathswatch-"));
  controller = await startController({ stateDir, nats: { listenHost: "127.0.0.1", port: 0 }, api: { listenHost: "127.0.0.1", port: 0 } }, pino({ level: "silent" }));
  kv = await new Kvm(controller.nc).open(Buckets.nodePaths);
  const user = createUser();
  const jwt = await controller.authority.issueAgentUser({ nodeId: NODE, userPublicKey: user.getPublicKey() });
  nc = await connect({ servers: controller.natsUrl, authenticator: jwtAuthenticator(jwt, user.getSeed()), inboxPrefix: Subjects.inboxPrefix(NODE), maxReconnectAttempts: 0, ...(controller.natsCaPem ? { tls: { ca: controller.natsCaPem } } : {}) });
}, 60_000);
afterAll(async () => {
  await nc?.close().catch(() => {});
  await controller?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

const plan = (round: number, nodeId = NODE): NodePathsRecord => ({
  version: 1,
  nodeId,
  peers: [{ peer: nodeId === NODE ? PEER : NODE, relay: { node: "n-00000000000c0003", name: "relay-1", endpoint: "198.51.100.7:41000" }, round }],
  updatedAt: new Date().toISOString(),
});

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe("agent paths watch", () => {
  it("paths watch - no plan yet, then each newer plan; a plan naming another node ignored; deletion", async () => {
    const seen: [number | null, number][] = [];
    const watch = new NodePathsWatch(nc!, NODE, (r, revision) => seen.push([r === null ? null : (r.peers[0]?.round ?? -1), revision]), silentLogger);
    try {
      await watch.start();
      expect(seen, "no plan yet: (null, 0)").toEqual([[null, 0]]);
      const r1 = await kv.put(NODE, JSON.stringify(plan(1)));
      await until(() => seen.length >= 2);
      const r2 = await kv.put(NODE, JSON.stringify(plan(2)));
      await until(() => seen.length >= 3);
      expect(seen.slice(1), "plans as written").toEqual([
        [1, r1],
        [2, r2],
      ]);
      await kv.put(NODE, JSON.stringify(plan(3, PEER)));
      await new Promise((r) => setTimeout(r, 300));
      expect(seen.length, "a plan naming another node is never reported").toBe(3);
      await kv.delete(NODE);
      await until(() => seen.length >= 4);
      expect(seen[3]?.[0], "deleted: null").toBeNull();
    } finally {
      watch.stop();
    }
  });

  it("paths watch - the agent user cannot read another node's plan", async () => {
    await kv.put(PEER, JSON.stringify(plan(1, PEER)));
    const agentKv = await new Kvm(nc!).open(Buckets.nodePaths, { allow_direct: true });
    const got = await agentKv.get(PEER).then(
      (e) => `read ${e?.string() ?? "nothing"}`,
      (err: unknown) => `refused: ${String(err)}`,
    );
    expect(got.startsWith("refused"), `direct get of ${PEER}'s plan as ${NODE}: got ${got}, want a permission error`).toBe(true);
  });
});
