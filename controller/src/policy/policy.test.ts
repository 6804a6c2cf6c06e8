/**
 * Policies through the REST API of a real controller: stored one key per name,
 * refused whole (nothing stored) when any field is wrong or unknown, and each
 * node's compiled entries following applies and deletes.
 */
import { Kvm } from "@nats-io/kv";
import { Buckets, ReservedIdentities, generateKeyPair, type EnrollResponse, type NodePolicy, type PolicyInput } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentIdentity, assertNothingStored, eventually, startTestController, storedState, type TestController } from "../testing.js";

let t: TestController;
/** Nodes by role, enrolled with identity labels. */
const node: Record<"web" | "api" | "db", EnrollResponse & { identity: number }> = {} as never;

async function enroll(ns: string, sa: string, labels: Record<string, string> = {}): Promise<EnrollResponse & { identity: number }> {
  const key = await t.client.createJoinKey({ labels: { "weft:namespace": ns, "weft:serviceaccount": sa, ...labels } });
  const res = await t.client.raw("POST", "/v1/enroll", JSON.stringify(agentIdentity(key.key, generateKeyPair().publicKey).body));
  if (res.status !== 201) throw new Error(`setup enroll ${ns}/${sa}: got ${res.status} ${res.text}`);
  const enrolled = res.body as EnrollResponse;
  const view = await t.client.getNode(enrolled.nodeId);
  return { ...enrolled, identity: view.identity!.id };
}

beforeAll(async () => {
  t = await startTestController();
  node.web = await enroll("web", "frontend", { tier: "web" });
  node.api = await enroll("payments", "api", { tier: "app" });
  node.db = await enroll("payments", "db", { tier: "data" });
});
afterAll(async () => t?.stop());

const spiffe = (ns: string, sa: string) => `spiffe://weft.internal/ns/${ns}/sa/${sa}`;
const webToApi = (protocol = "tcp"): PolicyInput => ({
  name: "web-to-api",
  rules: [{ action: "allow", from: [{ identity: spiffe("web", "frontend") }], to: [{ namespace: "payments", serviceAccount: "api" }], ports: [{ protocol: protocol as "tcp", port: 8443 }] }],
});

async function put(body: unknown, name = (body as { name: string }).name) {
  return t.client.raw("PUT", `/v1/policies/${encodeURIComponent(name)}`, JSON.stringify(body));
}

/** The node's compiled policy, without its delivery state (a publisher pass may not have run yet). */
async function entriesOf(which: keyof typeof node): Promise<Omit<NodePolicy, "delivery">> {
  const { delivery: _d, ...rest } = await t.client.nodePolicy(node[which].nodeId);
  return rest;
}

describe("policy api", () => {
  it("policy - apply, get, list and delete; one KV key per policy name", async () => {
    const applied = await t.client.applyPolicy(webToApi("TCP"));
    expect(applied.rules[0]?.ports?.[0]?.protocol, "stored protocol is lower case").toBe("tcp");
    expect(await t.client.getPolicy("web-to-api"), "GET returns what PUT stored").toEqual(applied);
    expect((await t.client.listPolicies()).map((p) => p.name), "list").toContain("web-to-api");
    const kv = await new Kvm(t.running.nc).open(Buckets.policies);
    expect((await kv.get("web-to-api"))?.json(), "KV value under the policy's name").toEqual(applied);
    expect(await t.client.deletePolicy("web-to-api"), "DELETE returns the policy").toEqual(applied);
    const gone = await t.client.raw("GET", "/v1/policies/web-to-api");
    expect(gone.status, `GET after delete: got ${gone.status} ${gone.text}, want 404`).toBe(404);
    const again = await t.client.raw("DELETE", "/v1/policies/web-to-api");
    expect(again.status, `DELETE twice: got ${again.status}, want 404`).toBe(404);
  });

  it("policy - validation errors name the offending field, and nothing is stored", async () => {
    const before = await storedState(t);
    const bad = webToApi();
    const rule = bad.rules[0]!;
    const body = { ...bad, rules: [rule, { ...rule, ports: [{ protocol: "tcp", port: 0 }] }] };
    const res = await put(body);
    expect(res.status, `PUT with port 0: got ${res.status} ${res.text}, want 400`).toBe(400);
    expect((res.body as { message: string }).message, "message").toContain("rules[1].ports[0].port: must be 1-65535");
    expect((res.body as { details?: { path: string }[] }).details?.map((d) => d.path), "details").toEqual(["rules[1].ports[0].port"]);
    await assertNothingStored(t, before, "a policy with a bad port");
  });

  it("policy - unknown keys, actions and selector kinds are refused (fail closed), nothing stored", async () => {
    await t.client.applyPolicy({ ...webToApi(), name: "existing" });
    const before = await storedState(t);
    const rule = webToApi().rules[0]!;
    const cases: [string, unknown][] = [
      ["unknown action", { name: "existing", rules: [{ ...rule, action: "audit" }] }],
      ["unknown rule key", { name: "existing", rules: [{ ...rule, l7: { path: "/" } }] }],
      ["unknown top-level key", { name: "existing", rules: [rule], enabled: false }],
      ["unknown selector kind", { name: "existing", rules: [{ ...rule, from: [{ dns: "example.com" }] }] }],
      ["unknown port field", { name: "existing", rules: [{ ...rule, ports: [{ protocol: "tcp", port: 80, except: [81] }] }] }],
      ["name mismatch", { ...webToApi(), name: "other" }],
    ];
    for (const [what, body] of cases) {
      const res = await put(body, "existing");
      expect(res.status, `${what}: got ${res.status} ${res.text}, want 400`).toBe(400);
      expect((res.body as { error: string }).error, `${what}: error code`).toBe("invalid_request");
    }
    await assertNothingStored(t, before, "refused policies");
    expect((await t.client.getPolicy("existing")).rules, "the stored policy is unchanged").toEqual(webToApi().rules);
    await t.client.deletePolicy("existing");
  });
});

describe("policy compilation per node", () => {
  it("policy - a node's entries include only rules targeting its identity", async () => {
    await t.client.applyPolicy(webToApi());
    await t.client.applyPolicy({
      name: "app-to-data",
      rules: [{ action: "allow", from: [{ labels: { tier: "app" } }], to: [{ labels: { tier: "data" } }], ports: [{ protocol: "tcp", port: 5432 }] }],
    });
    const [api, db, web] = [await entriesOf("api"), await entriesOf("db"), await entriesOf("web")];
    expect(api, "api node").toEqual({
      nodeId: node.api.nodeId,
      identity: { id: node.api.identity, spiffeId: spiffe("payments", "api") },
      localIdentities: [node.api.identity],
      policies: ["web-to-api"],
      defaultDeny: [node.api.identity],
      entries: [{ srcId: node.web.identity, dstId: node.api.identity, proto: 6, port: 8443, endPort: 8443, verdict: "allow" }],
    });
    expect(db.entries, "db node").toEqual([{ srcId: node.api.identity, dstId: node.db.identity, proto: 6, port: 5432, endPort: 5432, verdict: "allow" }]);
    expect({ entries: web.entries, defaultDeny: web.defaultDeny }, "web node: nothing targets it").toEqual({ entries: [], defaultDeny: [] });
    await t.client.deletePolicy("app-to-data");
    await t.client.deletePolicy("web-to-api");
  });

  it("policy - TCP vs tcp and 10.1.2.3/8 vs 10.0.0.0/8 compile to identical entries", async () => {
    const doc = (protocol: string, cidr: string) => ({
      name: "normalise",
      rules: [{ action: "allow", from: [{ cidr }, { namespace: "web" }], to: [{ namespace: "payments", serviceAccount: "api" }], ports: [{ protocol, port: 443 }] }],
    });
    expect((await put(doc("TCP", "10.1.2.3/8"))).status, "PUT variant").toBe(200);
    const variant = await entriesOf("api");
    const storedVariant = await t.client.getPolicy("normalise");
    expect((await put(doc("tcp", "10.0.0.0/8"))).status, "PUT canonical").toBe(200);
    const canonical = await entriesOf("api");
    expect(variant, "compiled entries").toEqual(canonical);
    expect(storedVariant, "stored document").toEqual(await t.client.getPolicy("normalise"));
    expect(canonical.entries.map((e) => e.srcId), "sources: world (cidr) and web").toEqual([ReservedIdentities.world, node.web.identity]);
    await t.client.deletePolicy("normalise");
  });

  it("policy - a deny cuts its ports out of a wider allow, and deleting a policy restores the previous compiled output", async () => {
    await t.client.applyPolicy({ name: "web-any-tcp", rules: [{ action: "allow", from: [{ namespace: "web" }], to: [{ namespace: "payments" }], ports: [{ protocol: "tcp" }, { protocol: "tcp", port: 22 }] }] });
    const before = await entriesOf("api");
    await t.client.applyPolicy({ name: "no-ssh", rules: [{ action: "deny", from: [{ namespace: "web" }], to: [{ namespace: "payments" }], ports: [{ protocol: "tcp", port: 22 }] }] });
    const withDeny = await entriesOf("api");
    const w = node.web.identity;
    const a = node.api.identity;
    expect(withDeny.entries, "every tcp port allowed but ssh, which is denied").toEqual([
      { srcId: w, dstId: a, proto: 6, port: 0, endPort: 21, verdict: "allow" },
      { srcId: w, dstId: a, proto: 6, port: 22, endPort: 22, verdict: "deny" },
      { srcId: w, dstId: a, proto: 6, port: 23, endPort: 65535, verdict: "allow" },
    ]);
    await t.client.deletePolicy("no-ssh");
    expect(await entriesOf("api"), "after deleting the deny policy").toEqual(before);
    await t.client.deletePolicy("web-any-tcp");
    expect(await entriesOf("api"), "after deleting every policy").toEqual({ nodeId: node.api.nodeId, identity: before.identity, localIdentities: [node.api.identity], policies: [], defaultDeny: [], entries: [] });
  });

  it("policy - a policy naming an identity no node has yet is stored and compiles to nothing", async () => {
    await t.client.applyPolicy({ name: "future", rules: [{ action: "allow", from: [{ namespace: "web" }], to: [{ identity: spiffe("billing", "worker") }] }] });
    expect((await t.client.getPolicy("future")).name, "stored").toBe("future");
    for (const which of ["web", "api", "db"] as const) {
      const got = await entriesOf(which);
      expect({ entries: got.entries, defaultDeny: got.defaultDeny }, `${which} node`).toEqual({ entries: [], defaultDeny: [] });
    }
    await t.client.deletePolicy("future");
  });

  it("policy - the node view says whether its compiled policy is delivered", async () => {
    const got = await eventually(async () => (await t.client.nodePolicy(node.api.nodeId)).delivery, 3000);
    expect(got, "delivery of a small policy").toEqual({ state: "ok", mapEntries: expect.any(Number), capacity: 65536 });
    expect((await t.client.getNode(node.api.nodeId)).policyDelivery?.state, "in the node view too").toBe("ok");
  });

  it("policy - GET /v1/nodes/:id/policy takes a node name and answers 404 for an unknown node", async () => {
    const view = await t.client.getNode(node.api.nodeId);
    expect((await t.client.nodePolicy(view.name)).nodeId, "by name").toBe(node.api.nodeId);
    const res = await t.client.raw("GET", "/v1/nodes/no-such-node/policy");
    expect(res.status, `unknown node: got ${res.status} ${res.text}, want 404`).toBe(404);
  });
});
