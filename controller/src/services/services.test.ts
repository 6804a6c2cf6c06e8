/**
 * Services against a real controller (embedded NATS): apply over REST allocates a VIP in the
 * service range and keeps it across updates; a refused document stores nothing; delete releases
 * the VIP; each node's key of weft-node-services carries what its identities may call and the
 * checks it runs; an agent reads its own key and no other node's; a health report from the
 * backend's node reaches the clients' keys, a report about an address the node does not host is
 * ignored; the OpenAPI document lists the routes.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { Buckets, NodeServicesRecord, Subjects, generateKeyPair, type HealthReport, type ServiceInput, type WorkloadsReply } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollAgent, eventually, startTestController, type EnrolledAgent, type TestController } from "../testing.js";

let t: TestController;
let kv: KV;
const agents: EnrolledAgent[] = [];
let client: { id: string; agent: EnrolledAgent };
let backend: { id: string; agent: EnrolledAgent; workload: string };

const API: ServiceInput = {
  name: "api",
  namespace: "shop",
  ports: [{ port: 80, targetPort: 8080 }],
  backends: [{ namespace: "shop", serviceAccount: "api" }],
  healthCheck: { protocol: "tcp", intervalMs: 500 },
};

async function enroll(ns: string, sa: string, workloads: { name: string; namespace: string; serviceAccount: string }[] = []) {
  const key = await t.client.createJoinKey({ labels: { "weft:namespace": ns, "weft:serviceaccount": sa, "weft:workload-namespaces": "shop" } });
  const agent = await enrollAgent(t, key.key, generateKeyPair().publicKey);
  agents.push(agent);
  const id = agent.enrolled.nodeId;
  if (workloads.length > 0) {
    const msg = await agent.nc.request(Subjects.workloads(id), JSON.stringify({ version: 1, workloads }), { timeout: 5000 });
    const reply = msg.json<WorkloadsReply>();
    if (!reply.ok) throw new Error(`workloads: ${reply.error.message}`);
    return { id, agent, addresses: reply.workloads.map((w) => w.address) };
  }
  return { id, agent, addresses: [] };
}

async function published(id: string): Promise<NodeServicesRecord | undefined> {
  const e = await kv.get(id);
  return e && e.operation === "PUT" ? NodeServicesRecord.parse(e.json()) : undefined;
}

beforeAll(async () => {
  t = await startTestController();
  kv = await new Kvm(t.running.nc).open(Buckets.nodeServices);
  const c = await enroll("shop", "web");
  client = { id: c.id, agent: c.agent };
  const b = await enroll("infra", "host", [{ name: "api", namespace: "shop", serviceAccount: "api" }]);
  backend = { id: b.id, agent: b.agent, workload: b.addresses[0]! };
}, 60_000);
afterAll(async () => {
  for (const a of agents) await a.nc.close().catch(() => {});
  await t?.stop();
});

describe("services", () => {
  it("services - apply allocates a VIP in the service range, keeps it across updates, and a node's key lists what it may call", async () => {
    const first = await t.client.applyService(API);
    expect(first.vip, "VIP in overlay.serviceCidr").toMatch(/^100\.96\.\d+\.\d+$/);
    const again = await t.client.applyService({ ...API, algorithm: "least-connections" });
    expect(again.vip, "same VIP after an update").toBe(first.vip);
    expect(again.spec.algorithm).toBe("least-connections");
    const start = Date.now();
    const rec = await eventually(async () => {
      const r = await published(client.id);
      return r?.services.some((s) => s.name === "api" && s.algorithm === "least-connections") ? r : undefined;
    }, 3000, 10);
    expect(rec, "the client node's record").toBeDefined();
    const svc = rec!.services[0]!;
    expect([svc.vip, svc.backends.map((b) => b.address)]).toEqual([first.vip, [backend.workload]]);
    expect(rec!.checks, "the client hosts no backend: no checks").toEqual([]);
    const b = await published(backend.id);
    expect(b?.checks.map((c) => [c.service, c.address, c.workload, c.port, c.protocol]), "the backend's node checks its workload").toEqual([["shop/api", backend.workload, "api", 8080, "tcp"]]);
    console.log(`services: apply to the client's key in ${Date.now() - start} ms`);
    const view = await t.client.nodeServices(client.id);
    expect(view.services.map((s) => s.name), "REST view of the node equals the published record").toEqual(rec!.services.map((s) => s.name));
  });

  it("services - a refused document (bad field, path mismatch, VIP outside the range) stores nothing and names the field", async () => {
    const before = (await t.client.listServices()).map((v) => `${v.service.name}@${v.vip}`);
    const bad = [
      [{ ...API, name: "bad", algorithm: "random" }, /algorithm: must be one of/],
      [{ ...API, name: "bad", ports: [] }, /ports: needs at least one port/],
      [{ ...API, name: "bad", vip: "10.0.0.1" }, /vip: 10.0.0.1 is not a host address of the service range 100.96.0.0\/16/],
    ] as const;
    for (const [doc, want] of bad) {
      const res = await t.client.raw("PUT", "/v1/services/shop/bad", JSON.stringify(doc));
      expect(res.status, `${JSON.stringify(doc).slice(0, 60)}: status`).toBe(400);
      expect(res.text).toMatch(want);
    }
    const mismatch = await t.client.raw("PUT", "/v1/services/shop/other", JSON.stringify({ ...API, name: "bad" }));
    expect([mismatch.status, mismatch.text]).toEqual([400, expect.stringMatching(/does not match the path/)]);
    expect((await t.client.listServices()).map((v) => `${v.service.name}@${v.vip}`), "nothing stored").toEqual(before);
    const missing = await t.client.raw("GET", "/v1/services/shop/nope");
    expect(missing.status).toBe(404);
  });

  it("services - an agent reads its own key of weft-node-services and no other node's", async () => {
    const own = await new Kvm(client.agent.nc).open(Buckets.nodeServices, { allow_direct: true });
    const mine = await own.get(client.id);
    expect(mine?.operation, "its own key").toBe("PUT");
    await expect(own.get(backend.id), "another node's key").rejects.toThrow();
    const errors = client.agent.errors.length;
    client.agent.nc.subscribe(Subjects.keyUpdates(Buckets.nodeServices, backend.id));
    await client.agent.nc.flush();
    await eventually(() => (client.agent.errors.length > errors ? true : undefined), 2000);
    expect(client.agent.errors.slice(errors).map((e) => e.message).join(" "), "subscribing to another node's key").toMatch(/Permissions Violation/i);
  });

  it("services - a health report from the backend's node reaches the clients' keys; one about an address it does not host is ignored", async () => {
    const report = (address: string, healthy: boolean): HealthReport => ({ version: 1, full: false, sentAt: new Date().toISOString(), results: [{ service: "shop/api", address, port: 8080, healthy, since: new Date().toISOString() }] });
    // The client node lies about the backend: ignored.
    client.agent.nc.publish(Subjects.serviceHealth(client.id), JSON.stringify(report(backend.workload, false)));
    await new Promise((r) => setTimeout(r, 300));
    expect((await published(client.id))?.services[0]?.backends[0]?.healthy, "a report from a node that does not host the backend").toBe(true);
    const start = Date.now();
    backend.agent.nc.publish(Subjects.serviceHealth(backend.id), JSON.stringify(report(backend.workload, false)));
    const down = await eventually(async () => ((await published(client.id))?.services[0]?.backends[0]?.healthy === false ? true : undefined), 3000, 5);
    expect(down, "unhealthy on the client's key").toBe(true);
    console.log(`services: health report to the client's key in ${Date.now() - start} ms`);
    const view = await t.client.getService("shop", "api");
    expect(view.backends.map((b) => [b.address, b.health])).toEqual([[backend.workload, "unhealthy"]]);
    backend.agent.nc.publish(Subjects.serviceHealth(backend.id), JSON.stringify(report(backend.workload, true)));
    expect(await eventually(async () => ((await published(client.id))?.services[0]?.backends[0]?.healthy ? true : undefined), 3000, 5)).toBe(true);
    // Garbage on the subject is dropped and the controller keeps serving.
    backend.agent.nc.publish(Subjects.serviceHealth(backend.id), "{not json");
    expect((await t.client.raw("GET", "/healthz")).status).toBe(200);
  });

  it("services - delete releases the VIP (the next service may get it) and empties the nodes' records", async () => {
    const vip = (await t.client.getService("shop", "api")).vip;
    const deleted = await t.client.deleteService("shop", "api");
    expect(deleted.vip).toBe(vip);
    expect(await eventually(async () => ((await published(client.id))?.services.length === 0 ? true : undefined), 3000, 10)).toBe(true);
    const next = await t.client.applyService({ ...API, name: "api2" });
    expect(next.vip, "the lowest free VIP again").toBe(vip);
    const taken = await t.client.raw("PUT", "/v1/services/shop/api3", JSON.stringify({ ...API, name: "api3", vip }));
    expect([taken.status, taken.text], "a VIP another service holds").toEqual([409, expect.stringMatching(/belongs to service:shop\/api2/)]);
  });

  it("services - the OpenAPI document has the service routes with the Service schema", async () => {
    const doc = (await t.client.raw("GET", "/openapi.json")).body as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> } }>> };
    const put = doc.paths["/v1/services/{namespace}/{name}"]?.put;
    expect(Object.keys(put?.requestBody?.content["application/json"]?.schema.properties ?? {}), "request body fields").toEqual(
      expect.arrayContaining(["name", "namespace", "ports", "algorithm", "backends", "subsets", "locality", "healthCheck", "rateLimit"]),
    );
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/services", "/v1/nodes/{id}/services"]));
  });
});
