/**
 * The workloads service against a real controller, with real agent credentials:
 * addresses from the node's workload prefix (stable per name), identities per
 * SPIFFE ID, the set recorded in the node's peer record; refusals name the field
 * and write nothing; the node id comes from the subject; prefixes are allocated
 * lazily for old nodes and freed with the node; same-site transport follows
 * overlay.plaintextSites, also across a restart.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { Buckets, NodeRecord, PeerRecord, Subjects, WorkloadsReply, generateKeyPair, type WorkloadSpec } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimKey } from "../ipam/claims.js";
import { enrollAgent, startTestController, type EnrolledAgent, type TestController } from "../testing.js";

let t: TestController;
let peers: KV;
let nodes: KV;
let ipam: KV;
const agents: EnrolledAgent[] = [];

beforeAll(async () => {
  t = await startTestController({ overlay: { plaintextSites: ["site-a"] } });
  const kvm = new Kvm(t.running.nc);
  [peers, nodes, ipam] = await Promise.all([kvm.open(Buckets.peers), kvm.open(Buckets.nodes), kvm.open(Buckets.ipam)]);
});
afterAll(async () => {
  for (const a of agents) await a.nc.close().catch(() => {});
  await t?.stop();
});

async function agentWith(labels: Record<string, string>, overrides: Record<string, unknown> = {}): Promise<EnrolledAgent> {
  // A site named here is vouched for by the key (plaintext sites need that).
  const site = typeof overrides["site"] === "string" ? overrides["site"] : undefined;
  const key = await t.client.createJoinKey({ labels, ...(site === undefined ? {} : { site }) });
  const a = await enrollAgent(t, key.key, generateKeyPair().publicKey, overrides);
  agents.push(a);
  return a;
}

async function ask(a: EnrolledAgent, body: unknown, nodeId = a.enrolled.nodeId): Promise<WorkloadsReply> {
  const msg = await a.nc.request(Subjects.workloads(nodeId), JSON.stringify(body), { timeout: 3000 });
  return WorkloadsReply.parse(msg.json());
}
const req = (workloads: unknown[]) => ({ version: 1, workloads });
const spec = (name: string, namespace = "payments", serviceAccount = "api"): WorkloadSpec => ({ name, namespace, serviceAccount });
const peerOf = async (nodeId: string) => {
  const e = await peers.get(nodeId);
  return { revision: e?.revision ?? 0, record: PeerRecord.parse(e?.json()) };
};

describe("workloads service", () => {
  it("workloads - addresses come from the node's prefix, stay with their names, and land in the peer record with identities", async () => {
    const a = await agentWith({ "weft:namespace": "payments", "weft:serviceaccount": "node", "weft:workload-identities": "payments/api payments/db" });
    const prefix = a.enrolled.workloadPrefix!;
    const base = prefix.slice(0, prefix.lastIndexOf(".") + 1);
    const first = await ask(a, req([spec("api-1"), spec("api-2"), spec("db-1", "payments", "db")]));
    expect(first.ok, `first request: ${JSON.stringify(first)}`).toBe(true);
    if (!first.ok) return;
    expect(first.workloadPrefix, "prefix in the reply").toBe(prefix);
    expect(first.workloads.map((w) => [w.name, w.address]), "addresses: the lowest host addresses of the prefix").toEqual([
      ["api-1", `${base}1`],
      ["api-2", `${base}2`],
      ["db-1", `${base}3`],
    ]);
    expect(first.workloads.map((w) => w.identity.spiffeId), "identities").toEqual([
      "spiffe://weft.internal/ns/payments/sa/api",
      "spiffe://weft.internal/ns/payments/sa/api",
      "spiffe://weft.internal/ns/payments/sa/db",
    ]);
    expect(first.workloads[0]?.identity.id, "one SPIFFE ID, one number").toBe(first.workloads[1]?.identity.id);
    expect((await t.client.listIdentities()).map((i) => i.spiffeId), "identities are listed").toContain("spiffe://weft.internal/ns/payments/sa/db");
    const { record } = await peerOf(a.enrolled.nodeId);
    expect({ prefix: record.workloadPrefix, workloads: record.workloads }, "peer record").toEqual({ prefix, workloads: first.workloads });

    // Declarative: api-1 removed, api-3 added; the others keep their addresses, the new one takes a free one.
    const second = await ask(a, req([spec("db-1", "payments", "db"), spec("api-3"), spec("api-2")]));
    expect(second.ok && second.workloads.map((w) => [w.name, w.address]), "second request").toEqual([
      ["db-1", `${base}3`],
      ["api-3", `${base}1`],
      ["api-2", `${base}2`],
    ]);
    const same = await peerOf(a.enrolled.nodeId);
    const again = await ask(a, req([spec("db-1", "payments", "db"), spec("api-3"), spec("api-2")]));
    expect(again, "the same set again: same answer").toEqual(second);
    expect((await peerOf(a.enrolled.nodeId)).revision, "the same set again writes nothing").toBe(same.revision);
    const empty = await ask(a, req([]));
    expect(empty.ok && empty.workloads, "an empty set removes every workload").toEqual([]);
    expect((await peerOf(a.enrolled.nodeId)).record.workloads, "peer record after the empty set").toEqual([]);
    expect(a.errors.map(String), "permission errors on the agent connection").toEqual([]);
  });

  it("workloads - refusals name the field, give a code, and write nothing", async () => {
    const a = await agentWith({ "weft:namespace": "payments", "weft:workload-identities": "payments/api,payments/db" });
    const ok = await ask(a, req([spec("keep")]));
    expect(ok.ok, "a first good request").toBe(true);
    const before = await peerOf(a.enrolled.nodeId);
    const identitiesBefore = await t.client.listIdentities();
    const cases: [string, unknown, string, string][] = [
      ["identity not granted", req([spec("keep"), spec("x", "billing", "api")]), "forbidden", "workloads[1]: node node-"],
      ["the node's own namespace, another account", req([spec("keep"), spec("x", "payments", "admin")]), "forbidden", "was not granted identity payments/admin"],
      ["duplicate names", req([spec("keep"), spec("w"), spec("w", "payments", "db")]), "invalid_request", 'workloads[2].name: duplicate workload name "w" (also workloads[1].name)'],
      ["bad name", req([spec("Not_A_Name")]), "invalid_request", "workloads[0].name: must be a DNS label"],
      ["missing serviceAccount", req([{ name: "x", namespace: "payments" }]), "invalid_request", "workloads[0].serviceAccount"],
      ["unknown field", req([{ ...spec("x"), image: "nginx" }]), "invalid_request", "workloads[0]"],
      ["wrong version", { version: 2, workloads: [] }, "invalid_request", "version"],
      ["not an object", "hello", "invalid_request", "workloads request is invalid"],
    ];
    for (const [what, body, code, message] of cases) {
      const got = await ask(a, body);
      expect(got.ok, `${what}: ${JSON.stringify(got)}`).toBe(false);
      if (got.ok) continue;
      expect(got.error.code, `${what}: code`).toBe(code);
      expect(got.error.message, `${what}: message`).toContain(message);
    }
    const forbidden = await ask(a, req([spec("x", "billing", "api")]));
    expect(!forbidden.ok && forbidden.error.message, "the refusal says what the node may hold").toContain("it may hold: payments/default (its own), payments/api, payments/db");
    expect((await peerOf(a.enrolled.nodeId)).revision, "peer record revision after the refusals").toBe(before.revision);
    expect(await t.client.listIdentities(), "no identity allocated by a refused request").toEqual(identitiesBefore);
  });

  it("workloads - grants: weft:workload-identities pairs and wildcards, the older weft:workload-namespaces, and nothing by default", async () => {
    const none = await agentWith({ "weft:namespace": "payments", "weft:serviceaccount": "node" });
    const denied = await ask(none, req([spec("a", "payments", "api")]));
    expect(!denied.ok && denied.error.code, "no grant: not even another account of the node's own namespace").toBe("forbidden");
    expect((await ask(none, req([spec("self", "payments", "node")]))).ok, "its own identity").toBe(true);
    const wild = await agentWith({ "weft:workload-identities": "shop/*" });
    expect((await ask(wild, req([spec("a", "shop", "web"), spec("b", "shop", "db")]))).ok, "shop/*").toBe(true);
    const badKey = await t.client.raw("POST", "/v1/keys", JSON.stringify({ labels: { "weft:workload-identities": "shop/Web" } }));
    expect(badKey.status, `a key with a malformed grant: ${badKey.text}`).toBe(400);
  });

  it("workloads - the identity cap counts dropped identities within the grace: a flood of new names never grows the identity table past it", async () => {
    const capped = await startTestController({ identity: { maxWorkloadIdentitiesPerNode: 5, releaseAfterSeconds: 600 } });
    try {
      const key = await capped.client.createJoinKey({ labels: { "weft:workload-identities": "shop/*" } });
      const a = await enrollAgent(capped, key.key, generateKeyPair().publicKey);
      agents.push(a);
      const before = (await capped.client.listIdentities()).length;
      const codes = new Map<string, number>();
      for (let i = 0; i < 200; i++) {
        const msg = await a.nc.request(Subjects.workloads(a.enrolled.nodeId), JSON.stringify(req([spec(`w${i}`, "shop", `sa-${i}`)])), { timeout: 3000 });
        const got = WorkloadsReply.parse(msg.json());
        const code = got.ok ? "ok" : got.error.code;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      const after = (await capped.client.listIdentities()).length;
      expect(Object.fromEntries(codes), "200 requests, each a new service account").toEqual({ ok: 5, identity_limit: 195 });
      expect(after - before, "identities added").toBe(5);
      const node = await capped.client.getNode(a.enrolled.nodeId);
      expect([node.workloads?.length, node.recentIdentities?.length], "workloads now, dropped ones held").toEqual([1, 4]);
      // Going back to identities it holds is always fine.
      expect((await ask(a, req([spec("again", "shop", "sa-0"), spec("w4", "shop", "sa-4")]))).ok, "identities within the cap").toBe(true);
    } finally {
      await capped.stop();
    }
  });

  it("workloads - weft:workload-namespaces allows the listed namespaces, or any with *", async () => {
    const listed = await agentWith({ "weft:namespace": "infra", "weft:workload-namespaces": "web, batch" });
    const star = await agentWith({ "weft:workload-namespaces": "*" });
    expect((await ask(listed, req([spec("a", "web", "x"), spec("b", "batch", "y")]))).ok, "listed namespaces").toBe(true);
    const own = await ask(listed, req([spec("c", "infra", "x")]));
    expect(!own.ok && own.error.code, "the node's own namespace is not implied once the label is set").toBe("forbidden");
    expect((await ask(star, req([spec("a", "anything", "x"), spec("b", "else", "y")]))).ok, "*").toBe(true);
    const bad = await t.client.raw("POST", "/v1/keys", JSON.stringify({ labels: { "weft:workload-namespaces": "Web,,x" } }));
    expect(bad.status, `a key with a malformed label: ${bad.text}`).toBe(400);
  });

  it("workloads - the node id comes from the subject: an agent cannot ask for another node", async () => {
    const a = await agentWith({ "weft:namespace": "payments", "weft:workload-identities": "payments/api" });
    const b = await agentWith({ "weft:namespace": "payments", "weft:workload-identities": "payments/api" });
    const before = await peerOf(b.enrolled.nodeId);
    await expect(ask(a, req([spec("intruder")]), b.enrolled.nodeId), "request on another node's subject").rejects.toThrow();
    expect((await peerOf(b.enrolled.nodeId)).revision, "the other node's peer record").toBe(before.revision);
    expect(a.errors.some((e) => /permissions violation for publish/i.test(e.message)), `errors: ${a.errors.map(String).join("; ")}`).toBe(true);
  });

  it("workloads - a node enrolled without a prefix gets one on its first request; deleting the node frees it", async () => {
    const a = await agentWith({ "weft:namespace": "payments", "weft:workload-identities": "payments/api" });
    const id = a.enrolled.nodeId;
    const oldPrefix = a.enrolled.workloadPrefix!;
    // Make it look like a node from before workload prefixes.
    const n = await nodes.get(id);
    const { workloadPrefix: _n, ...nodeWithout } = NodeRecord.parse(n?.json());
    await nodes.put(id, JSON.stringify(nodeWithout));
    const { record } = await peerOf(id);
    const { workloadPrefix: _p, workloads: _w, ...peerWithout } = record;
    await peers.put(id, JSON.stringify({ ...peerWithout, allowedIps: [`${record.overlayAddress}/32`] }));
    await ipam.delete(claimKey("wprefix", oldPrefix));

    const got = await ask(a, req([spec("w")]));
    expect(got.ok, `request: ${JSON.stringify(got)}`).toBe(true);
    if (!got.ok) return;
    const view = await t.client.getNode(id);
    const after = (await peerOf(id)).record;
    expect({ node: view.workloadPrefix, peer: after.workloadPrefix, allowed: after.allowedIps }, "prefix everywhere").toEqual({
      node: got.workloadPrefix,
      peer: got.workloadPrefix,
      allowed: [`${record.overlayAddress}/32`, got.workloadPrefix],
    });
    expect((await ipam.get(claimKey("wprefix", got.workloadPrefix)))?.json<{ nodeId: string }>().nodeId, "prefix claim").toBe(id);

    await t.client.deleteNode(id);
    const claim = await ipam.get(claimKey("wprefix", got.workloadPrefix));
    expect(claim === null || claim.operation !== "PUT", "prefix claim after deleting the node").toBe(true);
  });

  it("workloads - sameSiteTransport is vxlan for plaintext sites, and follows the config across a restart", async () => {
    const inA = await agentWith({}, { site: "site-a" });
    const inB = await agentWith({}, { site: "site-b" });
    expect((await peerOf(inA.enrolled.nodeId)).record.sameSiteTransport, "site-a (plaintext)").toBe("vxlan");
    expect((await peerOf(inB.enrolled.nodeId)).record.sameSiteTransport, "site-b").toBeUndefined();

    const other = await startTestController({ overlay: { plaintextSites: ["site-b"] } });
    try {
      const keyA = await other.client.createJoinKey({ site: "site-a" });
      const keyB = await other.client.createJoinKey({ site: "site-b" });
      const x = await enrollAgent(other, keyA.key, generateKeyPair().publicKey, { site: "site-a" });
      const y = await enrollAgent(other, keyB.key, generateKeyPair().publicKey, { site: "site-b" });
      await x.nc.close();
      await y.nc.close();
      const stateDir = other.stateDir;
      await other.running.stop();
      const restarted = await startTestController({ overlay: { plaintextSites: ["site-a"] } }, { stateDir });
      try {
        const kv = await new Kvm(restarted.running.nc).open(Buckets.peers);
        const transport = async (nodeId: string) => PeerRecord.parse((await kv.get(nodeId))?.json()).sameSiteTransport;
        expect([await transport(x.enrolled.nodeId), await transport(y.enrolled.nodeId)], "after a restart with plaintextSites [site-a]").toEqual(["vxlan", undefined]);
      } finally {
        await restarted.stop();
      }
    } finally {
      await other.stop().catch(() => {});
    }
  });
});
