/**
 * Per-node policy distribution against a real controller: every node has a key in
 * weft-node-policies; a policy apply or delete reaches the targeted nodes' keys
 * well within a second and rewrites no other key; workload identities are local
 * to their node (deny wins, default deny covers them); a deleted node's key goes;
 * the REST view equals the published record; a restart rewrites nothing unchanged.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { Buckets, NodePolicyRecord, Subjects, fromCompactEntry, generateKeyPair, type PolicyInput, type WorkloadsReply } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollAgent, eventually, startTestController, type EnrolledAgent, type TestController } from "../testing.js";

let t: TestController;
let kv: KV;
const agents: EnrolledAgent[] = [];
const node: Record<"web" | "api" | "db", { id: string; identity: number; agent: EnrolledAgent }> = {} as never;

async function enroll(ns: string, sa: string, labels: Record<string, string> = {}) {
  const key = await t.client.createJoinKey({ labels: { "weft:namespace": ns, "weft:serviceaccount": sa, ...labels } });
  const agent = await enrollAgent(t, key.key, generateKeyPair().publicKey);
  agents.push(agent);
  const view = await t.client.getNode(agent.enrolled.nodeId);
  return { id: agent.enrolled.nodeId, identity: view.identity!.id, agent };
}

beforeAll(async () => {
  t = await startTestController();
  kv = await new Kvm(t.running.nc).open(Buckets.nodePolicies);
  node.web = await enroll("web", "frontend", { tier: "web" });
  node.api = await enroll("payments", "api", { tier: "app", "weft:workload-namespaces": "payments,jobs" });
  node.db = await enroll("payments", "db", { tier: "data" });
});
afterAll(async () => {
  for (const a of agents) await a.nc.close().catch(() => {});
  await t?.stop();
});

async function published(id: string): Promise<{ record: NodePolicyRecord; revision: number } | undefined> {
  const e = await kv.get(id);
  return e && e.operation === "PUT" ? { record: NodePolicyRecord.parse(e.json()), revision: e.revision } : undefined;
}
async function revisions(): Promise<Record<string, number | undefined>> {
  return Object.fromEntries(await Promise.all(Object.entries(node).map(async ([k, n]) => [k, (await published(n.id))?.revision] as const)));
}
/** Waits until the record of `id` satisfies `cond`; returns it and how long that took. */
async function waitFor(id: string, cond: (r: NodePolicyRecord) => boolean, ms = 2000) {
  const start = Date.now();
  const got = await eventually(async () => {
    const p = await published(id);
    return p && cond(p.record) ? p : undefined;
  }, ms, 5);
  return { got, elapsed: Date.now() - start };
}
const settle = () => new Promise((r) => setTimeout(r, 400));

describe("node policy publisher", () => {
  it("publisher - every node has a record; apply and delete reach only the targeted node's key within 500 ms", async () => {
    for (const [k, n] of Object.entries(node)) {
      const { got } = await waitFor(n.id, () => true);
      expect(got?.record, `${k}: initial record`).toMatchObject({ nodeId: n.id, localIdentities: [n.identity], policies: [], defaultDeny: [], entries: [] });
    }
    await settle();
    const before = await revisions();
    const policy: PolicyInput = { name: "web-to-api", rules: [{ action: "allow", from: [{ namespace: "web" }], to: [{ namespace: "payments", serviceAccount: "api" }], ports: [{ protocol: "tcp", port: 8443 }] }] };
    const applied = Date.now();
    await t.client.applyPolicy(policy);
    const { got, elapsed } = await waitFor(node.api.id, (r) => r.entries.length === 1);
    const sinceApply = Date.now() - applied;
    expect(got?.record.entries.map(fromCompactEntry), "api entries").toEqual([{ srcId: node.web.identity, dstId: node.api.identity, proto: 6, port: 8443, endPort: 8443, verdict: "allow" }]);
    expect(sinceApply, `apply → KV took ${sinceApply} ms (poll ${elapsed} ms), want < 500`).toBeLessThan(500);
    await settle();
    const after = await revisions();
    expect({ web: after.web, db: after.db }, "untouched nodes keep their revision").toEqual({ web: before.web, db: before.db });
    expect(after.api, "api rewritten once").toBeGreaterThan(before.api!);

    const deleted = Date.now();
    await t.client.deletePolicy("web-to-api");
    await waitFor(node.api.id, (r) => r.entries.length === 0);
    expect(Date.now() - deleted, "delete → KV, ms").toBeLessThan(500);
    await settle();
    const final = await revisions();
    expect({ web: final.web, db: final.db }, "untouched nodes after the delete").toEqual({ web: before.web, db: before.db });
  });

  it("publisher - workload identities are local to their node: rules to them land there, deny wins, default deny covers them", async () => {
    const msg = await node.api.agent.nc.request(
      Subjects.workloads(node.api.id),
      JSON.stringify({ version: 1, workloads: [{ name: "batch-1", namespace: "jobs", serviceAccount: "batch" }, { name: "api-2", namespace: "payments", serviceAccount: "api" }] }),
      { timeout: 3000 },
    );
    const reply = msg.json<WorkloadsReply>();
    expect(reply.ok, JSON.stringify(reply)).toBe(true);
    if (!reply.ok) return;
    const batch = reply.workloads[0]!.identity.id;
    await t.client.applyPolicy({
      name: "jobs",
      rules: [
        { action: "allow", from: [{ namespace: "web" }, { labels: { tier: "data" } }], to: [{ namespace: "jobs" }] },
        { action: "deny", from: [{ namespace: "web" }], to: [{ namespace: "jobs" }], ports: [{ protocol: "tcp", port: 22 }] },
        { action: "allow", from: [{ labels: { tier: "app" } }], to: [{ namespace: "web" }], ports: [{ protocol: "tcp", port: 80 }] },
      ],
    });
    const { got } = await waitFor(node.api.id, (r) => r.policies.includes("jobs"));
    const record = got!.record;
    expect(record.localIdentities, "api node's local identities: its own and the batch workload's (api-2 shares the node's)").toEqual([node.api.identity, batch].sort((a, b) => a - b));
    expect(record.defaultDeny, "default deny covers the workload identity, not the node's (no rule targets it)").toEqual([batch]);
    expect(record.entries.map(fromCompactEntry), "entries for the workload; label selector = node identities").toEqual([
      { srcId: node.web.identity, dstId: batch, proto: 0, port: 0, endPort: 65535, verdict: "allow" },
      { srcId: node.web.identity, dstId: batch, proto: 6, port: 22, endPort: 22, verdict: "deny" },
      { srcId: node.db.identity, dstId: batch, proto: 0, port: 0, endPort: 65535, verdict: "allow" },
    ].sort((a, b) => a.srcId - b.srcId || a.proto - b.proto));
    const web = await waitFor(node.web.id, (r) => r.policies.includes("jobs"));
    expect(web.got?.record.entries.map(fromCompactEntry), "web node: the label selector tier=app selects the api NODE identity only").toEqual([
      { srcId: node.api.identity, dstId: node.web.identity, proto: 6, port: 80, endPort: 80, verdict: "allow" },
    ]);
    await t.client.deletePolicy("jobs");
  });

  it("publisher - the REST view of a node's policy equals the published record", async () => {
    await t.client.applyPolicy({ name: "view", rules: [{ action: "allow", from: [{ namespace: "web" }], to: [{ namespace: "payments" }, { namespace: "jobs" }], ports: [{ protocol: "udp", port: 53 }] }] });
    const { got } = await waitFor(node.api.id, (r) => r.policies.includes("view"));
    const rest = await t.client.nodePolicy(node.api.id);
    expect(
      { localIdentities: rest.localIdentities, policies: rest.policies, defaultDeny: rest.defaultDeny, entries: rest.entries },
      "GET /v1/nodes/:id/policy vs weft-node-policies",
    ).toEqual({ localIdentities: got!.record.localIdentities, policies: got!.record.policies, defaultDeny: got!.record.defaultDeny, entries: got!.record.entries.map(fromCompactEntry) });
    await t.client.deletePolicy("view");
  });

  it("publisher - deleting a node deletes its key within a second", async () => {
    const extra = await enroll("tmp", "x");
    expect((await waitFor(extra.id, () => true)).got, "the new node's record").toBeDefined();
    await t.client.deleteNode(extra.id);
    const gone = await eventually(async () => ((await published(extra.id)) === undefined ? true : undefined), 1000, 5);
    expect(gone, "key of the deleted node").toBe(true);
  });
});

describe("node policy publisher across a restart", () => {
  it("publisher - a restart rewrites no unchanged record and removes keys of nodes that no longer exist", async () => {
    const a = await startTestController();
    const stateDir = a.stateDir;
    try {
      const key = await a.client.createJoinKey({ reusable: true });
      const x = await enrollAgent(a, key.key, generateKeyPair().publicKey);
      await x.nc.close();
      const akv = await new Kvm(a.running.nc).open(Buckets.nodePolicies);
      const rev = await eventually(async () => (await akv.get(x.enrolled.nodeId))?.revision, 2000, 5);
      expect(rev, "record before the restart").toBeDefined();
      await akv.put("n-00000000deadbeef", JSON.stringify({ stale: true }));
      await a.running.stop();
      const b = await startTestController({}, { stateDir });
      try {
        const bkv = await new Kvm(b.running.nc).open(Buckets.nodePolicies);
        expect((await bkv.get(x.enrolled.nodeId))?.revision, "unchanged record keeps its revision").toBe(rev);
        const stale = await bkv.get("n-00000000deadbeef");
        expect(stale?.operation, "key of a node that does not exist").not.toBe("PUT");
      } finally {
        await b.stop();
      }
    } finally {
      await a.stop().catch(() => {});
    }
  });
});
