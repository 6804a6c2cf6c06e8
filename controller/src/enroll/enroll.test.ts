/**
 * Enrollment as an agent sees it, against a real controller and its embedded
 * NATS: what a successful enrollment returns and stores, and for every kind of
 * bad request the HTTP status, a message naming the problem, nothing stored and
 * a controller that keeps serving.
 */
import { decode, type User } from "@nats-io/jwt";
import { Kvm } from "@nats-io/kv";
import { Buckets, EnrollResponse, PeerRecord, Subjects, TRUST_BUNDLE_KEY, cidrContains, parseCidr, parseIpv4, generateKeyPair } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentIdentity, assertNothingStored, claimsOf, refusalDetail, startTestController, storedState, type AgentIdentity, type TestController } from "../testing.js";

let t: TestController;
let reusableKey: string;

beforeAll(async () => {
  t = await startTestController();
  reusableKey = (await t.client.createJoinKey({ reusable: true, description: "enroll tests" })).key;
});
afterAll(async () => {
  await t?.stop();
});

function newAgent(overrides: Record<string, unknown> = {}, joinKey = reusableKey): AgentIdentity {
  return agentIdentity(joinKey, generateKeyPair().publicKey, overrides);
}

function post(body: unknown) {
  return t.client.raw("POST", "/v1/enroll", typeof body === "string" ? body : JSON.stringify(body));
}

async function enrollOk(agent: AgentIdentity): Promise<EnrollResponse> {
  const res = await post(agent.body);
  expect(res.status, `enroll ${String(agent.body["name"])}: got ${res.status} ${res.text}, want 201`).toBe(201);
  const parsed = EnrollResponse.safeParse(res.body);
  expect(parsed.success, `enroll response: got ${res.text}, want an EnrollResponse`).toBe(true);
  return parsed.data as EnrollResponse;
}

/** Sends `body` and checks status, error code and that the message names `mentions`; then that nothing was stored. */
async function expectRejected(what: string, body: unknown, status: number, code: string, mentions: RegExp): Promise<void> {
  const before = await storedState(t);
  const res = await post(body);
  expect(res.status, `${what}: got ${res.status} ${res.text}, want ${status}`).toBe(status);
  const got = refusalDetail(t, res, what);
  expect(got.code, `${what}: error code in ${res.text}`).toBe(code);
  expect(got.message, `${what}: the logged reason should name the problem`).toMatch(mentions);
  await assertNothingStored(t, before, what);
}

describe("enrollment", () => {
  it("enroll - returns a node id, an address in 100.64.0.0/16, the overlay range and NATS credentials", async () => {
    const agent = newAgent({ endpoints: { private: "10.1.0.5:51820", public: "203.0.113.7:51820" } });
    const got = await enrollOk(agent);
    expect(got.nodeId, "nodeId").toMatch(/^n-[0-9a-f]{16}$/);
    expect(got.overlayCidr, "overlayCidr").toBe("100.64.0.0/16");
    const range = parseCidr("100.64.0.0/16")!;
    const ip = parseIpv4(got.overlayAddress);
    expect(ip !== undefined && cidrContains(range, ip), `overlayAddress: got ${got.overlayAddress}, want one inside 100.64.0.0/16`).toBe(true);
    expect(got.overlayAddress.endsWith(".0") || got.overlayAddress === "100.64.255.255", `overlayAddress ${got.overlayAddress} is the network or broadcast address`).toBe(false);
    expect(got.nats.servers, "nats servers").toEqual([t.running.natsUrl]);
    expect(got.heartbeatSeconds, "heartbeatSeconds").toBe(5);
  });

  it("enroll - the user JWT is bound to the agent's nkey and confined to its own subjects", async () => {
    const agent = newAgent();
    const got = await enrollOk(agent);
    const claims = decode<User>(got.nats.userJwt);
    expect(claims.sub, "JWT sub (the agent's public nkey)").toBe(agent.natsPublicKey);
    expect(claims.nats.issuer_account, "JWT issuer_account").toBe(t.running.authority.accountPublicKey);
    expect(claims.nats.bearer_token, "JWT bearer_token").toBe(false);
    expect((claims.exp ?? 0) - claims.iat, "JWT lifetime (exp - iat): 24 h").toBe(24 * 3600);
    expect(got.nats.caPem, "the CA of the NATS server's certificate").toBe(t.running.natsCaPem);

    const own = `${Subjects.nodeRoot(got.nodeId)}.`;
    const pub = claims.nats.pub?.allow ?? [];
    expect(pub.length > 0, "pub.allow is not empty").toBe(true);
    for (const s of pub) {
      const ownSubject = s.startsWith(own);
      const readsPeers = s.startsWith("$JS.") && s.includes(`KV_${Buckets.peers}`);
      const ownPolicy = `$JS.API.DIRECT.GET.KV_${Buckets.nodePolicies}.$KV.${Buckets.nodePolicies}.${got.nodeId}`;
      const readsOwnPolicy = s === ownPolicy || s === `${ownPolicy}.*`;
      const readsOwnPaths = s === `$JS.API.DIRECT.GET.KV_${Buckets.nodePaths}.$KV.${Buckets.nodePaths}.${got.nodeId}`;
      const readsOwnServices = s === `$JS.API.DIRECT.GET.KV_${Buckets.nodeServices}.$KV.${Buckets.nodeServices}.${got.nodeId}`;
      const readsBundle = s === `$JS.API.DIRECT.GET.KV_${Buckets.trustBundle}.$KV.${Buckets.trustBundle}.${TRUST_BUNDLE_KEY}`;
      expect(ownSubject || readsPeers || readsOwnPolicy || readsOwnServices || readsOwnPaths || readsBundle, `pub.allow ${s}: want only ${own}…, read access to ${Buckets.peers}, a direct get of its own node policy and its chunks, its own services, its own path plan, or of the trust bundle`).toBe(true);
    }
    expect(pub.some((s) => s.startsWith("$KV.")), `pub.allow ${JSON.stringify(pub)}: want no $KV.… (bucket writes)`).toBe(false);
    const ownKey = (bucket: string, key: string) => [Subjects.keyUpdates(bucket, key), `$KV.${bucket}.${key}`];
    expect(claims.nats.sub?.allow, "sub.allow").toEqual([
      `${Subjects.inboxPrefix(got.nodeId)}.>`,
      Subjects.allPeerUpdates,
      ...ownKey(Buckets.nodePolicies, got.nodeId),
      ...ownKey(Buckets.nodeServices, got.nodeId),
      ...ownKey(Buckets.nodePaths, got.nodeId),
      ...ownKey(Buckets.trustBundle, TRUST_BUNDLE_KEY),
    ]);
  });

  it("enroll - the node is listed as never-seen and its peer record is in weft-peers", async () => {
    const agent = newAgent({ site: "site-b", endpoints: { public: "198.51.100.9:51820" } });
    const got = await enrollOk(agent);
    const nodes = await t.client.listNodes();
    const node = nodes.find((n) => n.nodeId === got.nodeId);
    expect(node, `GET /v1/nodes: got ${JSON.stringify(nodes.map((n) => n.nodeId))}, want ${got.nodeId} in it`).toBeDefined();
    expect(node?.status, "status").toBe("never-seen");
    expect(node?.name, "name").toBe(agent.body["name"]);
    expect(node?.site, "site").toBe("site-b");
    expect(node?.overlayAddress, "overlayAddress").toBe(got.overlayAddress);
    expect(node?.wireguardPublicKey, "wireguardPublicKey").toBe(agent.body["wireguardPublicKey"]);
    expect(node?.natsPublicKey, "natsPublicKey").toBe(agent.natsPublicKey);
    expect(node?.observedAddress, "observedAddress").toBe("127.0.0.1");

    const entry = await (await new Kvm(t.running.nc).open(Buckets.peers)).get(got.nodeId);
    const peer = PeerRecord.safeParse(entry?.json());
    expect(peer.success, `weft-peers ${got.nodeId}: got ${entry?.string()}, want a PeerRecord`).toBe(true);
    expect(peer.data?.overlayAddress, "peer overlayAddress").toBe(got.overlayAddress);
    expect(peer.data?.allowedIps, "peer allowedIps: the node's /32 and its workload prefix").toEqual([`${got.overlayAddress}/32`, got.workloadPrefix]);
    expect({ workloadPrefix: peer.data?.workloadPrefix, workloads: peer.data?.workloads, transport: peer.data?.sameSiteTransport }, "peer workload fields").toEqual({
      workloadPrefix: got.workloadPrefix,
      workloads: [],
      transport: undefined,
    });
    expect(peer.data?.wireguardPublicKey, "peer wireguardPublicKey").toBe(agent.body["wireguardPublicKey"]);
    expect(peer.data?.endpoints, "peer endpoints").toEqual({ public: "198.51.100.9:51820" });
    expect(entry?.string().includes(agent.natsPublicKey), "the peer record carries the node's NATS key").toBe(false);
  });

  it("enroll - a requested free overlay address is granted", async () => {
    const got = await enrollOk(newAgent({ overlayAddress: "100.64.200.7" }));
    expect(got.overlayAddress, "overlayAddress").toBe("100.64.200.7");
  });
});

describe("enrollment rejects", () => {
  it("enroll - an invalid join key is 403 with one message for garbage and for a wrong secret", async () => {
    const created = await t.client.createJoinKey({});
    const wrongSecret = `weft_${created.id}_${"A".repeat(43)}`;
    for (const [what, key] of [
      ["garbage key", "hello"],
      ["well-formed key with an unknown id", `weft_000000000000_${"A".repeat(43)}`],
      ["real id, wrong secret", wrongSecret],
      ["real key with a character cut off", created.key.slice(0, -1)],
    ] as const) {
      await expectRejected(what, newAgent({}, key).body, 403, "join_key_rejected", /join key is not valid/);
    }
    const info = (await t.client.listJoinKeys()).find((k) => k.id === created.id);
    expect(info?.uses, "uses of the key whose id was guessed").toBe(0);
    expect(info?.state, "state of the key whose id was guessed").toBe("active");
  });

  it("enroll - an already used one-time key is 403", async () => {
    const created = await t.client.createJoinKey({});
    await enrollOk(newAgent({}, created.key));
    await expectRejected("used one-time key", newAgent({}, created.key).body, 403, "join_key_rejected", /already used/);
  });

  it("enroll - one one-time key presented by two agents at once: exactly one 201 and one 403", async () => {
    for (let round = 0; round < 3; round++) {
      const created = await t.client.createJoinKey({});
      const before = await storedState(t);
      const agents = [newAgent({}, created.key), newAgent({}, created.key)];
      const results = await Promise.all(agents.map((a) => post(a.body)));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses, `round ${round}: got ${results.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join(" | ")}, want one 201 and one 403`).toEqual([201, 403]);
      const loser = results.find((r) => r.status === 403);
      expect(refusalDetail(t, loser!, "loser").message, "loser's logged reason").toMatch(/already used/);

      const after = await storedState(t);
      const added = after.nodes.filter((n) => !before.nodes.some((b) => b.nodeId === n.nodeId));
      expect(added.length, `round ${round}: new nodes: got ${added.length}, want 1`).toBe(1);
      const newClaims = after.claims.filter((c) => !before.claims.includes(c));
      expect(newClaims, `round ${round}: new ipam claims`).toEqual(claimsOf(added));
      const info = after.keys.find((k) => k.id === created.id);
      expect(`${info?.state} uses=${info?.uses}`, `round ${round}: key after the race`).toBe("used uses=1");
    }
  });

  it("enroll - malformed payloads are 400 naming the field", async () => {
    const valid = newAgent().body;
    const without = (field: string) => Object.fromEntries(Object.entries(valid).filter(([k]) => k !== field));
    const cases: [string, unknown, RegExp][] = [
      ["empty object", {}, /joinKey/],
      ["missing name", without("name"), /name/],
      ["missing wireguardPublicKey", without("wireguardPublicKey"), /wireguardPublicKey/],
      ["missing natsPublicKey", without("natsPublicKey"), /natsPublicKey/],
      ["missing version", without("version"), /version/],
      ["version 2", { ...valid, version: 2 }, /version/],
      ["listenPort as a string", { ...valid, listenPort: "51820" }, /listenPort/],
      ["listenPort 0", { ...valid, listenPort: 0 }, /listenPort/],
      ["name with capitals", { ...valid, name: "Web-1" }, /name/],
      ["name as a number", { ...valid, name: 7 }, /name/],
      ["site too long", { ...valid, site: "s".repeat(64) }, /site/],
      ["endpoints as a string", { ...valid, endpoints: "10.0.0.1:51820" }, /endpoints/],
      ["private endpoint without port", { ...valid, endpoints: { private: "10.0.0.1" } }, /endpoints\.private/],
      ["endpoint with a host name", { ...valid, endpoints: { public: "example.com:51820" } }, /endpoints\.public/],
      ["unspecified public endpoint", { ...valid, endpoints: { public: "0.0.0.0:51820" } }, /endpoints\.public.*unspecified/],
      ["metadata address as endpoint", { ...valid, endpoints: { private: "169.254.169.254:80" } }, /endpoints\.private.*link-local/],
      ["loopback endpoint", { ...valid, endpoints: { private: "127.0.0.1:51820" } }, /endpoints\.private.*loopback/],
      ["multicast endpoint", { ...valid, endpoints: { public: "224.0.0.1:51820" } }, /endpoints\.public.*multicast/],
      ["broadcast endpoint", { ...valid, endpoints: { public: "255.255.255.255:51820" } }, /endpoints\.public.*broadcast/],
      ["extra field", { ...valid, admin: true }, /admin/],
      ["extra endpoint kind", { ...valid, endpoints: { private: "10.0.0.1:1", ipv6: "x" } }, /ipv6/],
      ["wireguard key too short", { ...valid, wireguardPublicKey: "abc=" }, /wireguardPublicKey/],
      ["wireguard key is a nats key", { ...valid, wireguardPublicKey: valid["natsPublicKey"] }, /wireguardPublicKey/],
      ["nats key is a seed", { ...valid, natsPublicKey: new TextDecoder().decode(newAgent().natsSeed) }, /natsPublicKey/],
      ["nats key with a bad checksum", { ...valid, natsPublicKey: flipLast(String(valid["natsPublicKey"])) }, /natsPublicKey/],
      ["overlayAddress not an IP", { ...valid, overlayAddress: "100.64.0" }, /overlayAddress/],
      ["array body", [valid], /body|expected object/i],
      ["null body", null, /body|expected object/i],
      ["string body", "\"enroll me\"", /body|expected object/i],
    ];
    for (const [what, body, mentions] of cases) {
      await expectRejected(what, body, 400, "invalid_request", mentions);
    }
  });

  it("enroll - a body that is not JSON, empty, of another content type or over 64 KiB is rejected without storing anything", async () => {
    const before = await storedState(t);
    const cases: [string, () => ReturnType<typeof post>, number[]][] = [
      ["non-JSON body", () => t.client.raw("POST", "/v1/enroll", "{not json"), [400]],
      ["truncated JSON", () => t.client.raw("POST", "/v1/enroll", JSON.stringify(newAgent().body).slice(0, 50)), [400]],
      ["empty body", () => t.client.raw("POST", "/v1/enroll", ""), [400]],
      ["text/plain body", () => t.client.raw("POST", "/v1/enroll", JSON.stringify(newAgent().body), { "content-type": "text/plain" }), [400, 415]],
      ["body over 64 KiB", () => t.client.raw("POST", "/v1/enroll", JSON.stringify({ ...newAgent().body, pad: "x".repeat(70 * 1024) })), [413, 400]],
    ];
    for (const [what, send, want] of cases) {
      const res = await send();
      expect(want.includes(res.status), `${what}: got ${res.status} ${res.text}, want ${want.join(" or ")}`).toBe(true);
      expect((res.body as { error?: string } | undefined)?.error, `${what}: error code in ${res.text}`).toBe("invalid_request");
    }
    await assertNothingStored(t, before, "unparseable bodies");
  });

  it("enroll - a body carrying nodeId is 400", async () => {
    await expectRejected("nodeId in body", { ...newAgent().body, nodeId: "n-0123456789abcdef" }, 400, "invalid_request", /nodeId/);
  });

  it("enroll - a WireGuard public key or a name already enrolled is 409 naming the owner", async () => {
    const first = newAgent();
    const owner = await enrollOk(first);
    const sameKey = newAgent({ wireguardPublicKey: first.body["wireguardPublicKey"] });
    await expectRejected("same WireGuard key", sameKey.body, 409, "conflict", new RegExp(`WireGuard public key .*${owner.nodeId}`));
    const sameName = newAgent({ name: first.body["name"] });
    await expectRejected("same name", sameName.body, 409, "conflict", new RegExp(`node name ${String(first.body["name"])} .*${owner.nodeId}`));
  });

  it("enroll - an overlayAddress of another node is 409, one outside the range 400", async () => {
    const owner = await enrollOk(newAgent());
    await expectRejected("address of another node", newAgent({ overlayAddress: owner.overlayAddress }).body, 409, "conflict", new RegExp(`${owner.overlayAddress.replace(/\./g, "\\.")} belongs to node ${owner.nodeId}`));
    for (const addr of ["10.0.0.1", "100.65.0.1", "100.64.0.0", "100.64.255.255"]) {
      await expectRejected(`overlayAddress ${addr}`, newAgent({ overlayAddress: addr }).body, 400, "invalid_request", /overlayAddress .* not a host address inside the overlay range/);
    }
  });

  it("enroll - a one-time key is not burned by a request that fails after the key was checked", async () => {
    const first = newAgent();
    await enrollOk(first);
    const created = await t.client.createJoinKey({});
    await expectRejected("conflicting name with a fresh one-time key", newAgent({ name: first.body["name"] }, created.key).body, 409, "conflict", /node name/);
    await expectRejected("bad nats checksum with a fresh one-time key", newAgent({ natsPublicKey: flipLast(newAgent().natsPublicKey) }, created.key).body, 400, "invalid_request", /natsPublicKey/);
    const info = (await t.client.listJoinKeys()).find((k) => k.id === created.id);
    expect(`${info?.state} uses=${info?.uses}`, "key after two rejected enrollments").toBe("active uses=0");
    await enrollOk(newAgent({}, created.key));
  });

  it("enroll - a refused request allocates no identity, even for a SPIFFE ID no node has yet", async () => {
    const first = newAgent();
    await enrollOk(first);
    const fresh = await t.client.createJoinKey({ reusable: true, labels: { "weft:namespace": "refused", "weft:serviceaccount": "never-enrolled" } });
    // expectRejected compares the identities bucket too: no spiffe.* or id.* key may appear.
    await expectRejected("a fresh identity's key, a name already enrolled", newAgent({ name: first.body["name"] }, fresh.key).body, 409, "conflict", /node name/);
    const ok = await enrollOk(newAgent({}, fresh.key));
    expect((await t.client.getNode(ok.nodeId)).identity?.spiffeId ?? "", "the identity once an enrollment with that key succeeds").toMatch(/\/ns\/refused\/sa\/never-enrolled$/);
  });

  it("enroll - a one-time key presented at once by a request bound to fail on a claim and by a valid one goes to the valid one", async () => {
    const first = newAgent();
    await enrollOk(first);
    for (let round = 0; round < 5; round++) {
      const once = await t.client.createJoinKey({});
      const [failing, valid] = await Promise.all([post(newAgent({ name: first.body["name"] }, once.key).body), post(newAgent({}, once.key).body)]);
      expect(failing.status, `round ${round}: the request with a name already enrolled: ${failing.text}`).toBe(409);
      expect(valid.status, `round ${round}: the valid request: ${valid.text}`).toBe(201);
    }
  });

  it("enroll - the same enrollment again (its answer was lost) is answered with the same node, no use counted", async () => {
    for (const reusable of [true, false]) {
      const created = await t.client.createJoinKey({ reusable });
      const agent = newAgent({}, created.key);
      const first = await enrollOk(agent);
      const before = await storedState(t);
      const again = await enrollOk(agent);
      const what = reusable ? "reusable key" : "one-time key";
      expect({ ...again, nats: { ...again.nats, userJwt: "" } }, `${what}: the repeated answer`).toEqual({ ...first, nats: { ...first.nats, userJwt: "" } });
      expect(decode<User>(again.nats.userJwt).sub, `${what}: the repeated JWT's subject`).toBe(agent.natsPublicKey);
      const after = await storedState(t);
      expect(after.nodes.map((n) => n.nodeId), `${what}: nodes after the repeat`).toEqual(before.nodes.map((n) => n.nodeId));
      expect(after.claims, `${what}: ipam claims after the repeat`).toEqual(before.claims);
      const info = after.keys.find((k) => k.id === created.id);
      expect(info?.uses, `${what}: uses after the repeat`).toBe(1);
    }
  });

  it("enroll - a request that differs from the enrolled node in any key, name or join key is still refused", async () => {
    const agent = newAgent();
    const owner = await enrollOk(agent);
    const other = await t.client.createJoinKey({ reusable: true });
    await expectRejected("same keys, another name", { ...agent.body, name: "another-name" }, 409, "conflict", new RegExp(owner.nodeId));
    await expectRejected("same WireGuard key, another NATS key", { ...agent.body, natsPublicKey: newAgent().natsPublicKey }, 409, "conflict", new RegExp(owner.nodeId));
    await expectRejected("same node, another valid join key", { ...agent.body, joinKey: other.key }, 409, "conflict", new RegExp(owner.nodeId));
    const once = await t.client.createJoinKey({});
    const agent2 = newAgent({}, once.key);
    await enrollOk(agent2);
    await expectRejected("another node with the used one-time key", newAgent({}, once.key).body, 403, "join_key_rejected", /already used/);
    await expectRejected("the same node's request under another name with its one-time key", { ...agent2.body, name: "renamed" }, 403, "join_key_rejected", /already used/);
    await t.client.revokeJoinKey(once.id);
    await expectRejected("the same request after its key was revoked", agent2.body, 403, "join_key_rejected", /revoked/);
  });
});

function flipLast(key: string): string {
  return key.slice(0, -1) + (key.endsWith("A") ? "B" : "A");
}
