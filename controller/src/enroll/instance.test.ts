/**
 * Join by instance identity through the real API, with signed instance documents made by the cloud
 * simulators' signers (the controller trusts exactly those): a join key with an instance selector,
 * keyless joins through enrollment policies, Azure nonces and GCP audiences, and every refusal as a
 * 403 with its reason, nothing stored and the instance left unbound. An unsigned claim (with a
 * forged private endpoint, as in issue 11) is refused. The test client reaches the controller from
 * 127.0.0.1, so instances whose source-address check should pass list 127.0.0.1 among their private
 * addresses.
 */
import { Kvm } from "@nats-io/kv";
import { Buckets, ControllerClient, EnrollNonce, EnrollResponse, NodeRecord, generateKeyPair, type InstanceAttestation, type InstanceIdentityClaim } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsAttestation, azureAttestation, gcpAttestation, simSigners, TEST_AUDIENCE, type SimSigners } from "../attest/signed.fixture.js";
import { InventoryStore, type StoredInstance } from "../inventory/store.js";
import { agentIdentity, assertNothingStored, refusalDetail, startTestController, storedState, type TestController } from "../testing.js";

let t: TestController;
let s: SimSigners;
let inventory: InventoryStore;

beforeAll(async () => {
  s = await simSigners(TEST_AUDIENCE);
  t = await startTestController({ inventory: { instanceIdentity: s.config } });
  inventory = new InventoryStore(await new Kvm(t.running.nc).open(Buckets.inventory));
});
afterAll(async () => {
  await Promise.all([t?.stop(), s?.cleanup()]);
});

let counter = 0;
async function putInstance(overrides: Partial<StoredInstance> = {}): Promise<StoredInstance> {
  const n = ++counter;
  const instance: StoredInstance = {
    provider: "aws",
    account: "111111111111",
    region: "eu-west-1",
    zone: "eu-west-1a",
    network: "vpc-0aa",
    id: `i-0e${n.toString(16).padStart(15, "0")}`,
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

const LAUNCH = "2026-12-01T09:00:00Z";

/** The AWS document of `i` (its account, region, zone, first private address), signed by the AWS signer. */
function awsDoc(i: StoredInstance, pendingTime = LAUNCH): Promise<InstanceAttestation> {
  return awsAttestation(s.aws, { accountId: i.account, instanceId: i.id, region: i.region, availabilityZone: i.zone ?? `${i.region}a`, pendingTime, privateIp: i.privateIps[0] ?? null });
}

/** The `cloud.` labels a node bound to `i` carries. */
function cloudLabelsOf(i: StoredInstance): Record<string, string> {
  return {
    "cloud.provider": i.provider,
    "cloud.account": i.account,
    "cloud.region": i.region,
    ...(i.zone === undefined ? {} : { "cloud.zone": i.zone }),
    "cloud.instance": i.id,
    ...Object.fromEntries(Object.entries(i.tags).map(([k, v]) => [`cloud.tag.${k}`, v])),
  };
}

/** An enrollment body presenting `proof` (a signed document, or an unsigned claim), with `joinKey` (or none). */
function body(joinKey: string | undefined, proof: InstanceAttestation | { unsigned: InstanceIdentityClaim } | undefined, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const b = agentIdentity(joinKey ?? "unused", generateKeyPair().publicKey, overrides).body;
  if (joinKey === undefined) delete b["joinKey"];
  if (proof !== undefined && "unsigned" in proof) b["instance"] = proof.unsigned;
  else if (proof !== undefined) b["attestation"] = proof;
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

/** Keys of the attestation marks bucket: a refused enrollment must not add one. */
async function markKeys(): Promise<string[]> {
  const out: string[] = [];
  for await (const k of await (await new Kvm(t.running.nc).open(Buckets.attestations)).keys()) out.push(k);
  return out.sort();
}

/** Sends `b`, wants 403 instance_rejected naming `mentions`, nothing stored (no node, claim, mark), the instance's binding unchanged. */
async function expectRefused(what: string, b: Record<string, unknown>, mentions: RegExp | string, instance?: StoredInstance): Promise<void> {
  const before = await storedState(t);
  const marksBefore = await markKeys();
  const boundBefore = instance && (await boundNode(instance));
  const res = await post(b);
  expect(res.status, `${what}: got ${res.status} ${res.text}, want 403`).toBe(403);
  // The caller is told the code; the reason (instance ids, accounts, node ids) is in the controller's log.
  const err = refusalDetail(t, res, what);
  expect(err.code, `${what}: error code in ${res.text}`).toBe("instance_rejected");
  if (typeof mentions === "string") expect(err.message, `${what}: logged reason`).toBe(mentions);
  else expect(err.message, `${what}: logged reason`).toMatch(mentions);
  await assertNothingStored(t, before, what);
  expect(await markKeys(), `${what}: attestation marks`).toEqual(marksBefore);
  if (instance) expect(await boundNode(instance), `${what}: binding of ${instance.id} afterwards`).toBe(boundBefore);
}

describe("join key with an instance selector", () => {
  it("enroll - a matching signed document is enrolled, bound both ways and gets the key's labels and its instance's at once", async () => {
    const key = await t.client.createJoinKey({ reusable: true, labels: { role: "web" }, instanceSelector: { provider: "aws", account: "111111111111", tags: { env: "prod" } } });
    expect(key.instanceSelector, "the created key shows its selector").toEqual({ provider: "aws", account: "111111111111", tags: { env: "prod" } });
    const i = await putInstance();
    const got = await enrollOk("matching document", body(key.key, await awsDoc(i)));
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
    const taken = await putInstance();
    const owner = await enrollOk("first enrollment of an instance", body(key.key, await awsDoc(taken)));

    await expectRefused("no instance identity", body(key.key, undefined), `join key ${key.id} admits only instances in the inventory: run the agent with --cloud <provider> so it presents its instance identity`);
    const unknown = await awsAttestation(s.aws, { accountId: "111111111111", instanceId: "i-0123456789abcdef0", region: "eu-west-1", availabilityZone: "eu-west-1a", pendingTime: LAUNCH, privateIp: "127.0.0.1" });
    await expectRefused("unknown instance", body(key.key, unknown), "instance i-0123456789abcdef0 (aws, account 111111111111) is not in the inventory; run `weft inventory sync` or check the account is configured");
    await expectRefused("tag mismatch", body(key.key, await awsDoc(dev)), `instance ${dev.id} (aws, account 111111111111) does not match the join key's instance selector: tags.env: want prod, instance has dev`, dev);
    await expectRefused("stopped instance", body(key.key, await awsDoc(stopped)), /is stopped in the inventory/, stopped);
    await expectRefused("region signed differently", body(key.key, await awsAttestation(s.aws, { accountId: dev.account, instanceId: dev.id, region: "us-east-1", availabilityZone: "us-east-1a", pendingTime: LAUNCH, privateIp: "127.0.0.1" })), /signed document says region us-east-1, the inventory has eu-west-1/, dev);
    await expectRefused("instance already bound (another launch)", body(key.key, await awsDoc(taken, "2026-12-02T09:00:00Z")), new RegExp(`already bound to node ${owner.nodeId}`), taken);
  });

  it("enroll - an instance's identity tags name the new node's identity, and its role tags are labels, before any sync", async () => {
    const key = await t.client.createJoinKey({ reusable: true, labels: { "weft:namespace": "default", "weft:serviceaccount": "default" }, instanceSelector: {} });
    const i = await putInstance({ tags: { "weft:identity": "spiffe://weft.internal/ns/pay/sa/ledger", "weft:gateway": "true" } });
    const got = await enrollOk("instance with identity and gateway tags", body(key.key, await awsDoc(i)));
    const node = await nodeRecord(got.nodeId);
    expect({ identity: node.identity?.spiffeId, gateway: node.labels["cloud.tag.weft:gateway"] }, "node record right after enrollment").toEqual({
      identity: "spiffe://weft.internal/ns/pay/sa/ledger",
      gateway: "true",
    });
    const bad = await putInstance({ tags: { "weft:identity": "spiffe://other.domain/ns/x/sa/y" } });
    const kept = await nodeRecord((await enrollOk("instance with a foreign identity tag", body(key.key, await awsDoc(bad)))).nodeId);
    expect(kept.identity?.spiffeId, "a refused identity tag leaves the key's identity").toBe("spiffe://weft.internal/ns/default/sa/default");
  });

  it("enroll - a refused document does not burn a one-time key", async () => {
    const key = await t.client.createJoinKey({ instanceSelector: { tags: { env: "prod" } } });
    const dev = await putInstance({ tags: { env: "dev" } });
    await expectRefused("one-time key, tag mismatch", body(key.key, await awsDoc(dev)), /tags\.env: want prod, instance has dev/, dev);
    const info = (await t.client.listJoinKeys()).find((k) => k.id === key.id);
    expect(`${info?.state} uses=${info?.uses}`, "one-time key after the refusal").toBe("active uses=0");
    await enrollOk("the same key with a matching instance", body(key.key, await awsDoc(await putInstance())));
  });

  it("enroll - a key without a selector still checks a signed document it is given, and binds it", async () => {
    const key = await t.client.createJoinKey({ reusable: true });
    const unknown = await gcpAttestation(s.gcp, { instanceId: "777", projectId: "proj-777", zone: "europe-west1-b" });
    await expectRefused("plain key, unknown instance", body(key.key, unknown), "instance 777 (gcp, account proj-777) is not in the inventory; run `weft inventory sync` or check the account is configured");
    const i = await putInstance();
    const got = await enrollOk("plain key, known instance", body(key.key, await awsDoc(i)));
    expect(await boundNode(i), "binding").toBe(got.nodeId);
  });

  it("enroll - an AWS document enrolls once: after its node is deleted the same document is refused, a new launch's enrolls", async () => {
    const key = await t.client.createJoinKey({ reusable: true, instanceSelector: {} });
    const i = await putInstance();
    const doc = await awsDoc(i);
    const first = await enrollOk("first", body(key.key, doc));
    await t.client.deleteNode(first.nodeId);
    await expectRefused("the same document again", body(key.key, doc), new RegExp(`this launch ${LAUNCH.replace(/[.]/g, "\\.")} was already used to enroll node ${first.nodeId}`), i);
    const second = await enrollOk("a later launch (stop/start)", body(key.key, await awsDoc(i, "2026-12-03T09:00:00Z")));
    expect(await boundNode(i), "binding moves to the new node").toBe(second.nodeId);
  });
});

describe("what an instance document does not prove", () => {
  it("enroll - an unsigned instance claim is refused, even naming the instance's own private endpoint (issue 11)", async () => {
    // The API refuses an onprem policy now; one stored before that (written to KV here) still admits no unsigned claim.
    const policies = await new Kvm(t.running.nc).open(Buckets.enrollPolicies);
    await policies.put("onprem-all", JSON.stringify({ name: "onprem-all", selector: { provider: "onprem" }, labels: {} }));
    expect((await t.client.listEnrollmentPolicies()).map((p) => p.name), "the stored onprem policy is listed").toContain("onprem-all");
    const victim = await putInstance({ provider: "onprem", account: "lab", region: "onprem", id: "ledger-1", privateIps: ["192.168.50.11"], publicIps: [], tags: { "weft:gateway": "true" } });
    const claim = { provider: "onprem" as const, id: victim.id, account: victim.account };
    await expectRefused(
      "unsigned claim with the victim's private endpoint",
      body(undefined, { unsigned: claim }, { endpoints: { private: "192.168.50.11:51820" } }),
      `instance ledger-1 (onprem, account lab): an unsigned instance claim proves nothing and is refused; the agent must present its cloud's signed instance document (a current agent run with --cloud <provider> does)`,
      victim,
    );
    const key = await t.client.createJoinKey({ reusable: true });
    await expectRefused("unsigned claim with a join key", body(key.key, { unsigned: claim }), /an unsigned instance claim proves nothing/, victim);
    await t.client.deleteEnrollmentPolicy("onprem-all");
  });

  it("enroll - a document presented from the address of another instance in the inventory is refused", async () => {
    const key = await t.client.createJoinKey({ reusable: true });
    const victim = await putInstance({ privateIps: ["10.20.0.11"], publicIps: ["198.51.100.11"] });
    // The request comes from 127.0.0.1: the address of other instances in this inventory.
    await putInstance({ privateIps: ["127.0.0.1"], publicIps: [] });
    await expectRefused(
      "a captured document replayed from another machine",
      body(key.key, await awsDoc(victim)),
      new RegExp(`^instance ${victim.id} \\(aws, account 111111111111\\): the enrollment came from 127\\.0\\.0\\.1, an address of another instance in the inventory \\(instance i-0e[0-9a-f]+ \\(aws, account 111111111111\\)\\); a document is only good from its own instance$`),
      victim,
    );
  });

  it("enroll - a document signed by a key the controller does not trust is refused", async () => {
    const { createAwsIdentitySigner } = await import("@weft/cloud-sim");
    const rogue = await createAwsIdentitySigner();
    const i = await putInstance();
    const forged = await awsAttestation(rogue, { accountId: i.account, instanceId: i.id, region: i.region, availabilityZone: "eu-west-1a", pendingTime: LAUNCH, privateIp: "127.0.0.1" });
    const key = await t.client.createJoinKey({ reusable: true });
    await expectRefused("forged document", body(key.key, forged), /aws instance identity document: not signed by the certificate for region eu-west-1/, i);
  });
});

describe("keyless join through enrollment policies", () => {
  it("enroll - without a join key and with no enrollment policy at all: 403 saying so", async () => {
    const i = await putInstance({ provider: "gcp", account: "proj-none", id: "100001", region: "europe-west1", zone: "europe-west1-b" });
    expect((await t.client.listEnrollmentPolicies()).length, "no policies yet").toBe(0);
    await expectRefused(
      "keyless, no policies",
      body(undefined, await gcpAttestation(s.gcp, { instanceId: "100001", projectId: "proj-none", zone: "europe-west1-b" })),
      "no enrollment policy matches instance 100001 (gcp, account proj-none): there are no enrollment policies; enroll with a join key, or create a policy with `weft enrollment-policy apply`",
      i,
    );
  });

  it("enroll - without a join key: a matching policy enrolls the instance with the policy's labels; no match is 403 naming each policy's mismatch", async () => {
    await t.client.applyEnrollmentPolicy({ name: "aws-prod", selector: { provider: "aws", account: "111111111111", tags: { env: "prod" } }, labels: { "weft:namespace": "shop", "weft:serviceaccount": "web" } });
    await t.client.applyEnrollmentPolicy({ name: "gcp-any", selector: { provider: "gcp" }, labels: { cloud: "gcp" } });
    const prod = await putInstance();
    const got = await enrollOk("keyless, matching policy", body(undefined, await awsDoc(prod)));
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
      body(undefined, await awsDoc(dev)),
      `no enrollment policy matches instance ${dev.id} (aws, account 111111111111): aws-prod: tags.env: want prod, instance has dev; gcp-any: provider: want gcp, instance has aws`,
      dev,
    );
    await expectRefused("keyless, enrolled again while bound", body(undefined, await awsDoc(prod, "2026-12-04T09:00:00Z")), new RegExp(`already bound to node ${got.nodeId}`), prod);
  });

  it("enroll - one document sent twice at once without a key: one 201 and one 403", async () => {
    const i = await putInstance();
    const doc = await awsDoc(i);
    const results = await Promise.all([post(body(undefined, doc)), post(body(undefined, doc))]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses, `got ${results.map((r) => `${r.status} ${r.text.slice(0, 160)}`).join(" | ")}, want one 201 and one 403`).toEqual([201, 403]);
    const winner = EnrollResponse.parse(results.find((r) => r.status === 201)?.body);
    expect(await boundNode(i), "binding").toBe(winner.nodeId);
    const nodes = (await t.client.listNodes()).filter((n) => n.instance?.id === i.id);
    expect(nodes.map((n) => n.nodeId), "nodes bound to the instance").toEqual([winner.nodeId]);
  });

  it("enroll - GCP: a token for this audience enrolls once; another audience, an expired token and the same token again are refused", async () => {
    const i = await putInstance({ provider: "gcp", account: "weft-lab", id: "9000000000000000042", region: "europe-west1", zone: "europe-west1-b" });
    const doc = { instanceId: i.id, projectId: "weft-lab", zone: "europe-west1-b" };
    await expectRefused("another audience", body(undefined, await gcpAttestation(s.gcp, { ...doc, audience: "https://elsewhere.example" })), /audience "https:\/\/elsewhere\.example" is not this controller's/, i);
    await expectRefused("expired", body(undefined, await gcpAttestation(s.gcp, { ...doc, issuedAt: new Date(Date.now() - 2 * 3_600_000) })), /gcp identity token: expired/, i);
    const token = await gcpAttestation(s.gcp, { ...doc, issuedAt: new Date(Date.now() - 10_000) });
    const got = await enrollOk("gcp token", body(undefined, token));
    await t.client.deleteNode(got.nodeId);
    await expectRefused("the same token again", body(undefined, token), /token issued .* was already used to enroll node/, i);
  });

  it("enroll - Azure: POST /v1/enroll/nonce needs no credentials; a document with that nonce enrolls once; a replayed nonce and an unissued one are refused", async () => {
    await t.client.applyEnrollmentPolicy({ name: "azure-any", selector: { provider: "azure" }, labels: {} });
    const i = await putInstance({ provider: "azure", account: "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10", id: "5d7c0b6e-7a43-4f0b-9c1e-1f2d3c4b5a69", region: "westeurope", zone: "1" });
    const anon = new ControllerClient({ url: t.running.apiUrl, caPem: t.running.caPem });
    const issued = await anon.raw("POST", "/v1/enroll/nonce", "{}");
    expect(issued.status, issued.text).toBe(201);
    const { nonce } = EnrollNonce.parse(issued.body);
    const doc = { vmId: i.id, subscriptionId: i.account };
    await expectRefused("a nonce this controller never issued", body(undefined, await azureAttestation(s.azure, { ...doc, nonce: nonce === "0000000000" ? "0000000001" : "0000000000" })), /nonce 000000000[01] was not issued by this controller/, i);
    const att = await azureAttestation(s.azure, { ...doc, nonce });
    const got = await enrollOk("azure attested document", body(undefined, att));
    expect((await nodeRecord(got.nodeId)).instance, "bound instance").toEqual({ provider: "azure", account: i.account, id: i.id });
    await t.client.deleteNode(got.nodeId);
    await expectRefused("the same document (nonce) again", body(undefined, att), new RegExp(`nonce ${nonce} was already used`), i);
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
      ["on-prem selector (no signed document to admit)", "p5", { name: "p5", selector: { provider: "onprem", account: "lab" } }, /^enrollment policy is invalid: selector\.provider: onprem admits nothing: .*enroll on-prem hosts with a join key/],
    ] as const) {
      const res = await put(name, doc);
      expect(res.status, `${what}: ${res.text}`).toBe(400);
      expect((res.body as { message?: string }).message, `${what}: message`).toMatch(mentions);
    }
    const names = (await t.client.listEnrollmentPolicies()).map((p) => p.name);
    expect(names, "list").toContain("azure-web");
    expect(names, "list: nothing stored by a refused document").not.toContain("p5");
    expect((await t.client.deleteEnrollmentPolicy("azure-web")).name, "delete returns the policy").toBe("azure-web");
    const gone = await t.client.raw("GET", "/v1/enrollment-policies/azure-web");
    expect(gone.status, gone.text).toBe(404);
    const anon = await new ControllerClient({ url: t.running.apiUrl, caPem: t.running.caPem }).raw("GET", "/v1/enrollment-policies");
    expect(anon.status, "without the admin token").toBe(401);
  });
});
