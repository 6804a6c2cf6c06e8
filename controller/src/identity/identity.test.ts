/**
 * Identities from join-key labels: stable numbers per SPIFFE ID, shared by every
 * node with the same identity, carried in the peer records agents watch (the
 * address → identity entries of their ipcache), and bad labels refused when the
 * key is created.
 */
import { Kvm } from "@nats-io/kv";
import { Buckets, FIRST_ALLOCATED_IDENTITY, PeerRecord, generateKeyPair, type EnrollResponse } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordStore } from "../store/kv.js";
import { agentIdentity, assertNothingStored, startTestController, storedState, type TestController } from "../testing.js";
import { IdentityAllocator, IdentityEntry } from "./allocator.js";

let t: TestController;
beforeAll(async () => {
  t = await startTestController();
});
afterAll(async () => t?.stop());

async function enroll(joinKey: string): Promise<EnrollResponse> {
  const res = await t.client.raw("POST", "/v1/enroll", JSON.stringify(agentIdentity(joinKey, generateKeyPair().publicKey).body));
  expect(res.status, `enroll: ${res.text}`).toBe(201);
  return res.body as EnrollResponse;
}

describe("identities", () => {
  it("identity - nodes get the identity their key's labels name; the same SPIFFE ID always maps to one number", async () => {
    const payments = await t.client.createJoinKey({ reusable: true, labels: { "weft:namespace": "payments", "weft:serviceaccount": "api" } });
    const whole = await t.client.createJoinKey({ reusable: true, labels: { "weft:identity": "spiffe://weft.internal/ns/payments/sa/api" } });
    const plain = await t.client.createJoinKey({ reusable: true });
    const a = await enroll(payments.key);
    const b = await enroll(whole.key);
    const c = await enroll(plain.key);
    const [na, nb, nc] = await Promise.all([a, b, c].map((r) => t.client.getNode(r.nodeId)));
    expect(na?.identity?.spiffeId, "identity from namespace/serviceaccount labels").toBe("spiffe://weft.internal/ns/payments/sa/api");
    expect(nb?.identity, "identity from a whole weft:identity label").toEqual(na?.identity);
    expect(nc?.identity?.spiffeId, "identity of a key without identity labels").toBe("spiffe://weft.internal/ns/default/sa/default");
    expect(nc?.identity?.id, "different SPIFFE IDs, different numbers").not.toBe(na?.identity?.id);
    expect(Math.min(na!.identity!.id, nc!.identity!.id), "allocated numbers stay out of the reserved range").toBeGreaterThanOrEqual(FIRST_ALLOCATED_IDENTITY);

    const listed = await t.client.listIdentities();
    expect(listed.filter((i) => i.spiffeId === na?.identity?.spiffeId), "GET /v1/identities lists the identity once").toEqual([na?.identity]);
  });

  it("identity - the peer record every agent watches carries the node's address and identity", async () => {
    const key = await t.client.createJoinKey({ labels: { "weft:namespace": "web", "weft:serviceaccount": "frontend" } });
    const r = await enroll(key.key);
    const kv = await new Kvm(t.running.nc).open(Buckets.peers);
    const peer = PeerRecord.parse((await kv.get(r.nodeId))?.json());
    expect({ address: peer.overlayAddress, spiffeId: peer.identity?.spiffeId }, "peer record").toEqual({ address: r.overlayAddress, spiffeId: "spiffe://weft.internal/ns/web/sa/frontend" });
  });

  it("identity - 20 enrollments at once with a new identity all get the same number", async () => {
    const key = await t.client.createJoinKey({ reusable: true, labels: { "weft:namespace": "burst", "weft:serviceaccount": "worker" } });
    const results = await Promise.all(Array.from({ length: 20 }, () => enroll(key.key)));
    const nodes = await t.client.listNodes();
    const ids = new Set(nodes.filter((n) => results.some((r) => r.nodeId === n.nodeId)).map((n) => n.identity?.id));
    expect([...ids].length, `distinct identity numbers among 20 nodes of one SPIFFE ID: ${[...ids].join(", ")}`).toBe(1);
    const listed = (await t.client.listIdentities()).filter((i) => i.spiffeId === "spiffe://weft.internal/ns/burst/sa/worker");
    expect(listed.length, "identities listed for that SPIFFE ID").toBe(1);
  });

  it("identity - a key whose identity labels are malformed or in another trust domain is refused, nothing stored", async () => {
    const before = await storedState(t);
    const cases: Record<string, string>[] = [
      { "weft:identity": "spiffe://other.domain/ns/a/sa/b" },
      { "weft:identity": "not-a-spiffe-id" },
      { "weft:namespace": "Not_A_Label" },
      { "weft:identity": "spiffe://weft.internal/ns/a/sa/b", "weft:namespace": "a" },
    ];
    for (const labels of cases) {
      const res = await t.client.raw("POST", "/v1/keys", JSON.stringify({ labels }));
      expect(res.status, `create key with ${JSON.stringify(labels)}: ${res.text}`).toBe(400);
      expect((res.body as { message: string }).message, "message names the label").toMatch(/labels/);
    }
    await assertNothingStored(t, before, "refused identity labels");
  });

  it("identity - a second allocator (another controller, or after a restart) never hands out a number already taken", async () => {
    const kv = await new Kvm(t.running.nc).open(Buckets.identities);
    const first = await new IdentityAllocator(new RecordStore(kv, IdentityEntry, Buckets.identities)).allocate("spiffe://weft.internal/ns/x/sa/one");
    const second = await new IdentityAllocator(new RecordStore(kv, IdentityEntry, Buckets.identities)).allocate("spiffe://weft.internal/ns/x/sa/two");
    const again = await new IdentityAllocator(new RecordStore(kv, IdentityEntry, Buckets.identities)).allocate("spiffe://weft.internal/ns/x/sa/one");
    expect(second.id, "a new SPIFFE ID from a fresh allocator").not.toBe(first.id);
    expect(again, "the first SPIFFE ID from a third allocator").toEqual(first);
  });
});
