/**
 * Orphaned claims: which claims the sweep releases (the rule), and against a real controller what
 * an enrollment interrupted after its claims leaves — the agent's retries answered 503, the name
 * refused with 409, the address and prefix taken — until the leader's sweep releases them and the
 * same agent enrolls. A node that exists, a service's VIP and a fresh claim are left alone.
 */
import { Kvm } from "@nats-io/kv";
import { Buckets, NodeRecord, PeerRecord, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordStore, type Keyed } from "../store/kv.js";
import { agentIdentity, refusalDetail, startTestController, type TestController } from "../testing.js";
import { Claim, Claims, claimKey, type ClaimKind } from "./claims.js";
import { OrphanReaper, orphanedClaims, orphanedPeers } from "./orphans.js";

const NOW = new Date("2026-12-06T12:00:00Z");
const GRACE_MS = 600_000;
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

describe("orphaned claims - the rule", () => {
  it("orphans - released: a node id with no record, claimed at least the grace ago; nothing else", () => {
    const live = "n-00000000000000aa";
    const gone = "n-00000000000000bb";
    const cases: { owner: string; claimedAt: string; released: boolean; why: string }[] = [
      { owner: gone, claimedAt: ago(GRACE_MS), released: true, why: "no record, exactly the grace old" },
      { owner: gone, claimedAt: ago(GRACE_MS * 10), released: true, why: "no record, long ago" },
      { owner: gone, claimedAt: ago(GRACE_MS - 1), released: false, why: "no record yet, younger than the grace (an enrollment in flight)" },
      { owner: live, claimedAt: ago(GRACE_MS * 10), released: false, why: "its node exists" },
      { owner: "service:shop/api", claimedAt: ago(GRACE_MS * 10), released: false, why: "a service's VIP, not a node's" },
      { owner: "n-short", claimedAt: ago(GRACE_MS * 10), released: false, why: "not a node id" },
      { owner: gone, claimedAt: "yesterday", released: false, why: "an unreadable time proves no age" },
    ];
    const entries: Keyed<Claim>[] = cases.map((c, i) => ({ key: `addr.100.64.0.${i + 1}`, value: { nodeId: c.owner, claimedAt: c.claimedAt }, revision: i + 1 }));
    const released = new Set(orphanedClaims(entries, new Set([live]), NOW, GRACE_MS).map((c) => c.key));
    cases.forEach((c, i) => expect(released.has(entries[i]!.key), c.why).toBe(c.released));
  });
});

describe("orphaned peer records - the rule", () => {
  it("orphans - removed: the peer record of a node id with no record, stored at least the grace ago; nothing else", () => {
    const live = "n-00000000000000aa";
    const gone = "n-00000000000000bb";
    const cases: { key: string; storedMsAgo: number; removed: boolean; why: string }[] = [
      { key: gone, storedMsAgo: GRACE_MS, removed: true, why: "no node record, exactly the grace old" },
      { key: gone, storedMsAgo: GRACE_MS - 1, removed: false, why: "no node record yet, younger than the grace (an enrollment in flight)" },
      { key: live, storedMsAgo: GRACE_MS * 10, removed: false, why: "its node exists" },
      { key: "n-short", storedMsAgo: GRACE_MS * 10, removed: false, why: "not a node id" },
    ];
    cases.forEach((c, i) => {
      const got = orphanedPeers([{ key: c.key, revision: i + 1, created: new Date(NOW.getTime() - c.storedMsAgo) }], new Set([live]), NOW, GRACE_MS);
      expect(got.length === 1, c.why).toBe(c.removed);
    });
  });
});

describe("orphaned claims - on a controller", () => {
  let t: TestController;
  let joinKey: string;
  beforeAll(async () => {
    t = await startTestController();
    joinKey = (await t.client.createJoinKey({ reusable: true, description: "orphan tests" })).key;
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("orphans - an enrollment interrupted after its claims blocks its agent until the sweep releases them; then it enrolls", async () => {
    const store = new RecordStore(await new Kvm(t.running.nc).open(Buckets.ipam), Claim, Buckets.ipam);
    const wg = generateKeyPair().publicKey;
    const dead = "n-0000000000dead01";
    const old = new Date(Date.now() - 2 * 600_000).toISOString();
    // What a controller that died between its claims and the node record leaves (enroll.ts claims
    // the WireGuard key, the name, an address and a prefix, in that order, before writing the node).
    const orphans: [ClaimKind, string][] = [
      ["wgkey", wg],
      ["name", "interrupted"],
      ["addr", "100.64.250.1"],
      ["wprefix", "100.80.250.0/24"],
    ];
    for (const [kind, value] of orphans) expect(await store.create(claimKey(kind, value), { nodeId: dead, claimedAt: old }), `orphan ${kind} created`).not.toBe(false);
    // A fresh claim of another dead owner (an enrollment in flight) and a live node's claims stay.
    const young = claimKey("addr", "100.64.250.2");
    expect(await store.create(young, { nodeId: "n-0000000000dead02", claimedAt: new Date().toISOString() })).not.toBe(false);
    const agent = agentIdentity(joinKey, wg, { name: "interrupted" });
    const post = (body: unknown) => t.client.raw("POST", "/v1/enroll", JSON.stringify(body));

    const retried = await post(agent.body);
    expect(retried.status, `the agent's retry before the sweep: ${retried.text}`).toBe(503);
    expect(refusalDetail(t, retried, "retry").code).toBe("enrollment_in_progress");
    const other = await post(agentIdentity(joinKey, generateKeyPair().publicKey, { name: "interrupted" }).body);
    expect(other.status, `another agent with the orphaned name: ${other.text}`).toBe(409);
    const liveBefore = (await t.client.listNodes()).map((n) => n.nodeId);

    expect(await t.running.orphanReaper.sweep(), "claims the sweep released").toBe(orphans.length);
    for (const [kind, value] of orphans) expect(await store.get(claimKey(kind, value)), `${kind} released`).toBeUndefined();
    expect((await store.get(young))?.value.nodeId, "the fresh claim stays").toBe("n-0000000000dead02");
    const claimsOfLive = new Claims(store);
    for (const n of await t.client.listNodes()) expect(await claimsOfLive.owner("name", n.name), `${n.name}'s name claim stays`).toBe(n.nodeId);
    expect(await t.running.orphanReaper.sweep(), "a second sweep finds nothing").toBe(0);

    const enrolled = await post(agent.body);
    expect(enrolled.status, `the agent's next retry: ${enrolled.text}`).toBe(201);
    expect((await t.client.listNodes()).map((n) => n.nodeId).sort(), "one node more").toEqual([...liveBefore, (enrolled.body as { nodeId: string }).nodeId].sort());
    await store.delete(young);
  });

  it("orphans - a peer record whose node record was never written is removed by the sweep once older than the grace; a live node's and a fresh one stay", async () => {
    const kvm = new Kvm(t.running.nc);
    const peers = new RecordStore(await kvm.open(Buckets.peers), PeerRecord, Buckets.peers);
    const nodes = new RecordStore(await kvm.open(Buckets.nodes), NodeRecord, Buckets.nodes);
    const claims = new Claims(new RecordStore(await kvm.open(Buckets.ipam), Claim, Buckets.ipam));
    const graceMs = 300;
    const reaper = new OrphanReaper({ claims, peers, nodeIds: () => nodes.keys(), graceMs, intervalMs: 60_000, log: pino({ level: "silent" }) });
    const enrolled = await t.client.raw("POST", "/v1/enroll", JSON.stringify(agentIdentity(joinKey, generateKeyPair().publicKey, { name: "live-peer" }).body));
    expect(enrolled.status, `a live node: ${enrolled.text}`).toBe(201);
    const liveId = (enrolled.body as { nodeId: string }).nodeId;
    const livePeer = await peers.get(liveId);
    expect(livePeer, "the live node's peer record").toBeDefined();
    // What a controller that died between the two writes of an enrollment leaves: the peer record only.
    const orphan = { ...livePeer!.value, nodeId: "n-0000000000dead11", name: "interrupted-peer" };
    await peers.put(orphan.nodeId, orphan);
    await new Promise((r) => setTimeout(r, graceMs + 50));
    const fresh = { ...orphan, nodeId: "n-0000000000dead12", name: "in-flight-peer" };
    await peers.put(fresh.nodeId, fresh);

    expect(await reaper.sweep(), "records the sweep removed").toBe(1);
    expect(await peers.get(orphan.nodeId), "the old orphan").toBeUndefined();
    expect((await peers.get(fresh.nodeId))?.value.name, "the fresh one stays (its node record may still come)").toBe("in-flight-peer");
    expect((await peers.get(liveId))?.revision, "the live node's peer record stays, untouched").toBe(livePeer!.revision);
    await peers.delete(fresh.nodeId);
  });
});
