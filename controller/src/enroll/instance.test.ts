/**
 * Join by instance identity through the real API: a join key with an instance selector, keyless
 * joins through enrollment policies, and every refusal as a 403 with its reason, nothing stored and
 * the instance left unbound. The test client reaches the controller from 127.0.0.1, so instances
 * that should pass the address check list 127.0.0.1 among their private addresses.
 */
import { Kvm } from "@nats-io/kv";
import { Buckets, ControllerClient, EnrollResponse, NodeRecord, generateKeyPair, type InstanceIdentityClaim } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InventoryStore, type StoredInstance } from "../inventory/store.js";
import { agentIdentity, assertNothingStored, startTestController, storedState, type TestController } from "../testing.js";

let t: TestController;
let inventory: InventoryStore;

beforeAll(async () => {
  t = await startTestController();
  inventory = new InventoryStore(await new Kvm(t.running.nc).open(Buckets.inventory));
});
afterAll(async () => {
  await t?.stop();
});

let counter = 0;
async function putInstance(overrides: Partial<StoredInstance> = {}): Promise<StoredInstance> {
  const n = ++counter;
  const instance: StoredInstance = {
    provider: "aws",
    account: "111111111111",
    region: "eu-west-1",
    network: "vpc-0aa",
    id: `i-enroll${String(n).padStart(4, "0")}`,
    name: `web-${n}`,
    privateIps: ["127.0.0.1"],
    publicIps: [`203.0.113.${n}`],
    tags: { env: "prod" },
    state: "running",
    seenAt: new Date().toISOString(),
    ...overrides,
  };
  await inventory.upsertInstance(instance, () => false);
  return instance;
}

/** The `cloud.` labels a node bound to `i` carries. */
function cloudLabelsOf(i: StoredInstance): Record<string, string> {
  return {
    "cloud.provider": i.provider,
    "cloud.account": i.account,
    "cloud.region": i.region,
    "cloud.instance": i.id,
    ...Object.fromEntries(Object.entries(i.tags).map(([k, v]) => [`cloud.tag.${k}`, v])),
  };
}

const claimOf = (i: StoredInstance): InstanceIdentityClaim => ({ provider: i.provider, id: i.id, account: i.account, region: i.region });

/** An enrollment body presenting `instance` (or none), with `joinKey` (or none). */
function body(joinKey: string | undefined, instance: InstanceIdentityClaim | undefined, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const b = agentIdentity(joinKey ?? "unused", generateKeyPair().publicKey, overrides).body;
  if (joinKey === undefined) delete b["joinKey"];
  if (instance !== undefined) b["instance"] = instance;
  return b;
}

function post(b: unknown) {
  return t.client.raw("POST", "/v1/enroll", JSON.stringify(b));
}

async function enrollOk(what: string, b: Record<string, unknown>): Promise<EnrollResponse> {
  const res = await post(b);
  expect(res.status, `${what}: got ${res.status} ${res.text}, want 201`).toBe(201);
  return EnrollResponse.parse(res.body);
}

async function nodeRecord(nodeId: string): Promise<NodeRecord> {
  const entry = await (await new Kvm(t.running.nc).open(Buckets.nodes)).get(nodeId);
  return NodeRecord.parse(entry?.json());
}

async function boundNode(i: StoredInstance): Promise<string | undefined> {
  return (await inventory.instance(i.provider, i.account, i.id))?.boundNode;
}

/** Sends `b`, wants 403 instance_rejected naming `mentions`, nothing stored, the instance's binding unchanged. */
async function expectRefused(what: string, b: Record<string, unknown>, mentions: RegExp | string, instance?: StoredInstance): Promise<void> {
  const before = await storedState(t);
  const boundBefore = instance && (await boundNode(instance));
  const res = await post(b);
  expect(res.status, `${what}: got ${res.status} ${res.text}, want 403`).toBe(403);
  const err = res.body as { error?: string; message?: string };
  expect(err.error, `${what}: error code in ${res.text}`).toBe("instance_rejected");
  if (typeof mentions === "string") expect(err.message, `${what}: message`).toBe(mentions);
  else expect(err.message, `${what}: message`).toMatch(mentions);
  await assertNothingStored(t, before, what);
  if (instance) expect(await boundNode(instance), `${what}: binding of ${instance.id} afterwards`).toBe(boundBefore);
}

describe("join key with an instance selector", () => {
  it("enroll - a matching instance claim is enrolled, bound both ways and gets the key's labels and its instance's at once", async () => {
    const key = await t.client.createJoinKey({ reusable: true, labels: { role: "web" }, instanceSelector: { provider: "aws", account: "111111111111", tags: { env: "prod" } } });
    expect(key.instanceSelector, "the created key shows its selector").toEqual({ provider: "aws", account: "111111111111", tags: { env: "prod" } });
    const i = await putInstance();
    const got = await enrollOk("matching claim", body(key.key, claimOf(i)));
    const node = await nodeRecord(got.nodeId);
    expect({ instance: node.instance, labels: node.labels, joinKeyId: node.joinKeyId }, "node record").toEqual({
      instance: { provider: "aws", account: "111111111111", id: i.id },
      labels: { role: "web", ...cloudLabelsOf(i) },
      joinKeyId: key.id,
    });
    expect(await boundNode(i), `inventory binding of ${i.id}`).toBe(got.nodeId);
    expect((await t.client.listJoinKeys()).find((k) => k.id === key.id)?.instanceSelector, "GET /v1/keys shows the selector").toEqual(key.instanceSelector);
  });

  it("enroll - with such a key, every mismatch is 403 with the reason, stores nothing and binds nothing", async () => {
    const key = await t.client.createJoinKey({ reusable: true, instanceSelector: { provider: "aws", tags: { env: "prod" } } });
    const dev = await putInstance({ tags: { env: "dev" } });
    const stopped = await putInstance({ state: "stopped" });
    const elsewhere = await putInstance({ privateIps: ["10.9.0.1"] });
    const taken = await putInstance();
    const owner = await enrollOk("first enrollment of an instance", body(key.key, claimOf(taken)));

    await expectRefused("no instance identity", body(key.key, undefined), `join key ${key.id} admits only instances in the inventory: run the agent with --cloud <provider> so it presents its instance identity`);
    await expectRefused(
      "unknown instance",
      body(key.key, { provider: "aws", id: "i-123", account: "1111" }),
      "instance i-123 (aws, account 1111) is not in the inventory; run `weft inventory sync` or check the account is configured",
    );
    await expectRefused("tag mismatch", body(key.key, claimOf(dev)), `instance ${dev.id} (aws, account 111111111111) does not match the join key's instance selector: tags.env: want prod, instance has dev`, dev);
    await expectRefused("stopped instance", body(key.key, claimOf(stopped)), /is stopped in the inventory/, stopped);
    await expectRefused("region claimed wrong", body(key.key, { ...claimOf(dev), region: "us-east-1" }), /claims region us-east-1, the inventory has eu-west-1/, dev);
    await expectRefused("enrolling from elsewhere", body(key.key, claimOf(elsewhere), { endpoints: { private: "10.0.0.1:51820" } }), /came from 127\.0\.0\.1, private endpoint 10\.0\.0\.1, none of the instance's addresses \(10\.9\.0\.1/, elsewhere);
    await expectRefused("instance already bound", body(key.key, claimOf(taken)), new RegExp(`already bound to node ${owner.nodeId}`), taken);
  });

  it("enroll - an instance's identity tags name the new node's identity, and its role tags are labels, before any sync", async () => {
    const key = await t.client.createJoinKey({ reusable: true, labels: { "weft:namespace": "default", "weft:serviceaccount": "default" }, instanceSelector: {} });
    const i = await putInstance({ tags: { "weft:identity": "spiffe://weft.internal/ns/pay/sa/ledger", "weft:gateway": "true" } });
    const got = await enrollOk("instance with identity and gateway tags", body(key.key, claimOf(i)));
    const node = await nodeRecord(got.nodeId);
    expect({ identity: node.identity?.spiffeId, gateway: node.labels["cloud.tag.weft:gateway"] }, "node record right after enrollment").toEqual({
      identity: "spiffe://weft.internal/ns/pay/sa/ledger",
      gateway: "true",
    });
    const bad = await putInstance({ tags: { "weft:identity": "spiffe://other.domain/ns/x/sa/y" } });
    const kept = await nodeRecord((await enrollOk("instance with a foreign identity tag", body(key.key, claimOf(bad)))).nodeId);
    expect(kept.identity?.spiffeId, "a refused identity tag leaves the key's identity").toBe("spiffe://weft.internal/ns/default/sa/default");
  });

  it("enroll - a refused claim does not burn a one-time key", async () => {
    const key = await t.client.createJoinKey({ instanceSelector: { tags: { env: "prod" } } });
    const dev = await putInstance({ tags: { env: "dev" } });
    await expectRefused("one-time key, tag mismatch", body(key.key, claimOf(dev)), /tags\.env: want prod, instance has dev/, dev);
    const info = (await t.client.listJoinKeys()).find((k) => k.id === key.id);
    expect(`${info?.state} uses=${info?.uses}`, "one-time key after the refusal").toBe("active uses=0");
    await enrollOk("the same key with a matching instance", body(key.key, claimOf(await putInstance())));
  });

  it("enroll - a key without a selector still checks an instance identity it is given, and binds it", async () => {
    const key = await t.client.createJoinKey({ reusable: true });
    await expectRefused("plain key, unknown instance", body(key.key, { provider: "gcp", id: "777", account: "proj" }), "instance 777 (gcp, account proj) is not in the inventory; run `weft inventory sync` or check the account is configured");
    const i = await putInstance();
    const got = await enrollOk("plain key, known instance", body(key.key, claimOf(i)));
    expect(await boundNode(i), "binding").toBe(got.nodeId);
  });

  it("enroll - an instance whose node was deleted may enroll again", async () => {
    const key = await t.client.createJoinKey({ reusable: true, instanceSelector: {} });
    const i = await putInstance();
    const first = await enrollOk("first", body(key.key, claimOf(i)));
    await t.client.deleteNode(first.nodeId);
    const second = await enrollOk("after the node was deleted", body(key.key, claimOf(i)));
    expect(await boundNode(i), "binding moves to the new node").toBe(second.nodeId);
  });
});

describe("keyless join through enrollment policies", () => {
  it("enroll - without a join key and with no enrollment policy at all: 403 saying so", async () => {
    const i = await putInstance({ provider: "gcp", account: "proj-none", id: "100001" });
    expect((await t.client.listEnrollmentPolicies()).length, "no policies yet").toBe(0);
    await expectRefused(
      "keyless, no policies",
      body(undefined, claimOf(i)),
      "no enrollment policy matches instance 100001 (gcp, account proj-none): there are no enrollment policies; enroll with a join key, or create a policy with `weft enrollment-policy apply`",
      i,
    );
  });

  it("enroll - without a join key: a matching policy enrolls the instance with the policy's labels; no match is 403 naming each policy's mismatch", async () => {
    await t.client.applyEnrollmentPolicy({ name: "aws-prod", selector: { provider: "aws", account: "111111111111", tags: { env: "prod" } }, labels: { "weft:namespace": "shop", "weft:serviceaccount": "web" } });
    await t.client.applyEnrollmentPolicy({ name: "gcp-any", selector: { provider: "gcp" }, labels: { cloud: "gcp" } });
    const prod = await putInstance();
    const got = await enrollOk("keyless, matching policy", body(undefined, claimOf(prod)));
    const node = await nodeRecord(got.nodeId);
    expect({ joinKeyId: node.joinKeyId, policy: node.enrollmentPolicy, labels: node.labels, instance: node.instance, identity: node.identity?.spiffeId }, "node record").toEqual({
      joinKeyId: "",
      policy: "aws-prod",
      labels: { "weft:namespace": "shop", "weft:serviceaccount": "web", ...cloudLabelsOf(prod) },
      instance: { provider: "aws", account: "111111111111", id: prod.id },
      identity: "spiffe://weft.internal/ns/shop/sa/web",
    });
    expect(await boundNode(prod), "binding").toBe(got.nodeId);

    const dev = await putInstance({ tags: { env: "dev" } });
    await expectRefused(
      "keyless, no policy matches",
      body(undefined, claimOf(dev)),
      `no enrollment policy matches instance ${dev.id} (aws, account 111111111111): aws-prod: tags.env: want prod, instance has dev; gcp-any: provider: want gcp, instance has aws`,
      dev,
    );
    await expectRefused("keyless, not in the inventory", body(undefined, { provider: "aws", id: "i-404", account: "111111111111" }), /instance i-404 \(aws, account 111111111111\) is not in the inventory/);
    await expectRefused("keyless, enrolled again while bound", body(undefined, claimOf(prod)), new RegExp(`already bound to node ${got.nodeId}`), prod);
  });

  it("enroll - one instance enrolled twice at once without a key: one 201 and one 403", async () => {
    const i = await putInstance();
    const results = await Promise.all([post(body(undefined, claimOf(i))), post(body(undefined, claimOf(i)))]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses, `got ${results.map((r) => `${r.status} ${r.text.slice(0, 160)}`).join(" | ")}, want one 201 and one 403`).toEqual([201, 403]);
    const winner = EnrollResponse.parse(results.find((r) => r.status === 201)?.body);
    expect(await boundNode(i), "binding").toBe(winner.nodeId);
    const nodes = (await t.client.listNodes()).filter((n) => n.instance?.id === i.id);
    expect(nodes.map((n) => n.nodeId), "nodes bound to the instance").toEqual([winner.nodeId]);
  });

  it("enroll - a request with neither join key nor instance identity is 400 naming joinKey", async () => {
    const res = await post(body(undefined, undefined));
    expect(res.status, res.text).toBe(400);
    expect((res.body as { message?: string }).message, "message").toMatch(/joinKey: required unless the request carries an instance identity/);
  });
});

describe("enrollment policy API", () => {
  it("api - enrollment policies: put, get, list, delete; bad documents are 400 naming the field", async () => {
    const put = (name: string, doc: unknown) => t.client.raw("PUT", `/v1/enrollment-policies/${name}`, JSON.stringify(doc));
    const ok = await put("azure-web", { name: "azure-web", selector: { provider: "azure", region: "westeurope" } });
    expect(ok.status, ok.text).toBe(200);
    expect(await t.client.getEnrollmentPolicy("azure-web"), "get").toEqual({ name: "azure-web", selector: { provider: "azure", region: "westeurope" }, labels: {} });
    for (const [what, name, doc, mentions] of [
      ["no provider", "p1", { name: "p1", selector: { account: "x" } }, /selector\.provider/],
      ["unknown selector field", "p2", { name: "p2", selector: { provider: "aws", vpc: "x" } }, /vpc/],
      ["name differs from the path", "p3", { name: "other", selector: { provider: "aws" } }, /does not match the name in the path/],
      ["identity label outside the trust domain", "p4", { name: "p4", selector: { provider: "aws" }, labels: { "weft:identity": "spiffe://other.domain/ns/a/sa/b" } }, /trust domain|weft:identity/],
    ] as const) {
      const res = await put(name, doc);
      expect(res.status, `${what}: ${res.text}`).toBe(400);
      expect((res.body as { message?: string }).message, `${what}: message`).toMatch(mentions);
    }
    expect((await t.client.listEnrollmentPolicies()).map((p) => p.name), "list").toContain("azure-web");
    expect((await t.client.deleteEnrollmentPolicy("azure-web")).name, "delete returns the policy").toBe("azure-web");
    const gone = await t.client.raw("GET", "/v1/enrollment-policies/azure-web");
    expect(gone.status, gone.text).toBe(404);
    const anon = await new ControllerClient({ url: t.running.apiUrl, caPem: t.running.caPem }).raw("GET", "/v1/enrollment-policies");
    expect(anon.status, "without the admin token").toBe(401);
  });
});
