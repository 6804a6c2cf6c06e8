/**
 * Nodes as an operator sees them, against a real controller and its embedded
 * NATS: deleting a node takes it out of the list and out of every agent's peers
 * and frees its address, name and key; heartbeats published by a real agent
 * connection make it online, and forged or garbage heartbeats change nothing.
 */
import { Kvm } from "@nats-io/kv";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, EnrollResponse, Subjects, generateKeyPair, type Heartbeat, type NodeView } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimKey } from "../ipam/claims.js";
import { agentIdentity, assertNothingStored, eventually, startTestController, storedState, type AgentIdentity, type TestController } from "../testing.js";

let t: TestController;
let joinKey: string;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  t = await startTestController();
  joinKey = (await t.client.createJoinKey({ reusable: true })).key;
});
afterAll(async () => {
  for (const c of connections) await c.close().catch(() => {});
  await t?.stop();
});

async function enroll(overrides: Record<string, unknown> = {}): Promise<{ agent: AgentIdentity; res: EnrollResponse }> {
  const agent = agentIdentity(joinKey, generateKeyPair().publicKey, overrides);
  const raw = await t.client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
  expect(raw.status, `enroll ${String(agent.body["name"])}: got ${raw.status} ${raw.text}, want 201`).toBe(201);
  return { agent, res: EnrollResponse.parse(raw.body) };
}

async function peerEntry(nodeId: string) {
  const e = await (await new Kvm(t.running.nc).open(Buckets.peers)).get(nodeId);
  return e?.operation === "PUT" ? e : undefined;
}

describe("node delete", () => {
  for (const by of ["name", "id"] as const) {
    it(`nodes - delete by ${by} removes the node, its peer record and its claims; the name and key can enroll again`, async () => {
      const { agent, res } = await enroll();
      const name = String(agent.body["name"]);
      const wgKey = String(agent.body["wireguardPublicKey"]);
      expect(await peerEntry(res.nodeId), "peer record before delete").toBeDefined();

      const deleted = await t.client.deleteNode(by === "name" ? name : res.nodeId);
      expect(deleted.nodeId, "DELETE returns the deleted node").toBe(res.nodeId);

      const state = await storedState(t);
      expect(state.nodes.map((n) => n.nodeId), "GET /v1/nodes after delete").not.toContain(res.nodeId);
      expect(state.peers, "weft-peers after delete").not.toContain(res.nodeId);
      for (const claim of [claimKey("addr", res.overlayAddress), claimKey("name", name), claimKey("wgkey", wgKey)]) {
        expect(state.claims, `ipam claim ${claim} after delete`).not.toContain(claim);
      }
      const get = await t.client.raw("GET", `/v1/nodes/${res.nodeId}`);
      expect(get.status, `GET the deleted node: got ${get.status}, want 404`).toBe(404);

      const again = await enroll({ name, wireguardPublicKey: wgKey, overlayAddress: res.overlayAddress });
      expect(again.res.nodeId, "re-enrolled node gets a new id").not.toBe(res.nodeId);
      expect(again.res.overlayAddress, "re-enrolled node can take the freed address").toBe(res.overlayAddress);
      const byName = await t.client.getNode(name);
      expect(byName.nodeId, `GET /v1/nodes/${name} after re-enroll`).toBe(again.res.nodeId);
    });
  }

  it("nodes - deleting a node twice or an unknown node is 404 and removes nothing else", async () => {
    const { res } = await enroll();
    await t.client.deleteNode(res.nodeId);
    const before = await storedState(t);
    for (const target of [res.nodeId, "n-0123456789abcdef", "nobody"]) {
      const del = await t.client.raw("DELETE", `/v1/nodes/${target}`);
      expect(del.status, `DELETE /v1/nodes/${target}: got ${del.status} ${del.text}, want 404`).toBe(404);
    }
    await assertNothingStored(t, before, "deleting unknown nodes");
  });

  it("nodes - a node whose name looks like an id can be fetched and deleted by name", async () => {
    const { res } = await enroll({ name: "n-web" });
    expect((await t.client.getNode("n-web")).nodeId, "GET /v1/nodes/n-web").toBe(res.nodeId);
    expect((await t.client.deleteNode("n-web")).nodeId, "DELETE /v1/nodes/n-web").toBe(res.nodeId);
    expect((await t.client.listNodes()).map((n) => n.name), "names after delete").not.toContain("n-web");
  });
});

describe("node liveness", () => {
  async function connectAgent(agent: AgentIdentity, res: EnrollResponse): Promise<NatsConnection> {
    const nc = await connect({
      servers: res.nats.servers,
      tls: { ca: t.running.natsCaPem },
      authenticator: jwtAuthenticator(res.nats.userJwt, agent.natsSeed),
      inboxPrefix: Subjects.inboxPrefix(res.nodeId),
      maxReconnectAttempts: 0,
    });
    connections.push(nc);
    return nc;
  }

  function heartbeat(nodeId: string, appliedRevision: number, peers: Heartbeat["peers"] = []): Heartbeat {
    return { version: 1, nodeId, sentAt: new Date().toISOString(), appliedRevision, peers };
  }

  /** Wait until GET /v1/nodes/<id> satisfies `ok`; returns the last view seen. */
  async function nodeWhen(nodeId: string, ok: (n: NodeView) => boolean): Promise<NodeView> {
    let last: NodeView | undefined;
    await eventually(async () => {
      last = await t.client.getNode(nodeId);
      return ok(last) ? last : undefined;
    });
    return last!;
  }

  it("nodes - a heartbeat on the node's own subject makes it online with the reported peers", async () => {
    const { agent, res } = await enroll();
    const other = generateKeyPair().publicKey;
    const nc = await connectAgent(agent, res);
    const peers = [{ publicKey: other, lastHandshake: 1_700_000_000, endpoint: "203.0.113.9:51820" }];
    nc.publish(Subjects.heartbeat(res.nodeId), JSON.stringify(heartbeat(res.nodeId, 42, peers)));
    await nc.flush();
    const node = await nodeWhen(res.nodeId, (n) => n.status === "online");
    expect(node.status, `status after a heartbeat: got ${node.status}, want online`).toBe("online");
    expect(node.appliedRevision, "appliedRevision").toBe(42);
    expect(node.peers, "peers").toEqual(peers);
    expect(node.lastSeen, "lastSeen").toBeDefined();
    const listed = (await t.client.listNodes()).find((n) => n.nodeId === res.nodeId);
    expect(listed?.status, "status in GET /v1/nodes").toBe("online");
  });

  it("nodes - a heartbeat naming another node, on the sender's own subject, is ignored", async () => {
    const a = await enroll();
    const b = await enroll();
    const nc = await connectAgent(a.agent, a.res);
    nc.publish(Subjects.heartbeat(a.res.nodeId), JSON.stringify(heartbeat(b.res.nodeId, 7)));
    // Barrier: a valid heartbeat after the forged one on the same connection.
    nc.publish(Subjects.heartbeat(a.res.nodeId), JSON.stringify(heartbeat(a.res.nodeId, 8)));
    await nc.flush();
    const na = await nodeWhen(a.res.nodeId, (n) => n.appliedRevision === 8);
    expect(na.appliedRevision, "sender's own heartbeat arrived").toBe(8);
    const nb = await t.client.getNode(b.res.nodeId);
    expect(nb.status, `node named in the forged heartbeat: got ${nb.status}, want never-seen`).toBe("never-seen");
    expect(nb.appliedRevision, "node named in the forged heartbeat: appliedRevision").toBeUndefined();
  });

  it("nodes - garbage heartbeats are ignored and the controller keeps working", async () => {
    const { agent, res } = await enroll();
    const nc = await connectAgent(agent, res);
    const subject = Subjects.heartbeat(res.nodeId);
    for (const junk of ["{not json", "", "null", "[]", JSON.stringify({ ...heartbeat(res.nodeId, 1), version: 2 }), JSON.stringify({ ...heartbeat(res.nodeId, 1), peers: "none" }), "\u0000\u00ff"]) {
      nc.publish(subject, junk);
    }
    nc.publish(subject, JSON.stringify(heartbeat(res.nodeId, 99)));
    await nc.flush();
    const node = await nodeWhen(res.nodeId, (n) => n.appliedRevision === 99);
    expect(node.appliedRevision, "the valid heartbeat after the junk was recorded").toBe(99);
    expect(node.status, "status").toBe("online");
    const more = await enroll();
    expect(more.res.nodeId, "enrollment still works").toMatch(/^n-/);
  });

  it("nodes - 1,000 heartbeats alternating the interface epoch cause at most a handful of peer record writes", async () => {
    const { agent, res } = await enroll();
    const nc = await connectAgent(agent, res);
    const writes: number[] = [];
    const sub = t.running.nc.subscribe(Subjects.peerUpdates(res.nodeId), { callback: () => void writes.push(Date.now()) });
    await t.running.nc.flush();
    const started = Date.now();
    const epochs = ["00000000000000a1", "00000000000000b2"];
    for (let i = 0; i < 1000; i++) {
      nc.publish(Subjects.heartbeat(res.nodeId), JSON.stringify({ ...heartbeat(res.nodeId, i), sessionEpoch: epochs[i % 2] }));
      if (i % 100 === 99) await nc.flush();
    }
    await nc.flush();
    await nodeWhen(res.nodeId, (n) => n.appliedRevision === 999);
    await new Promise((r) => setTimeout(r, 500));
    sub.unsubscribe();
    const seconds = (Date.now() - started) / 1000;
    // One write at once, then at most one per 20 s interval while they keep coming.
    const allowed = 1 + Math.ceil(seconds / 20);
    expect(writes.length, `peer record writes for 1,000 alternating heartbeats in ${seconds.toFixed(1)} s`).toBeLessThanOrEqual(allowed);
    expect(writes.length, "the first epoch is written").toBeGreaterThanOrEqual(1);
    expect((await t.client.getNode(res.nodeId)).sessionEpoch, "the epoch written first").toBe(epochs[0]);
  });
});
