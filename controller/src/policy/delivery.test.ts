/**
 * Bounded delivery of compiled node policies, with a NodePolicyPublisher of its own on buckets of
 * its own (on a real NATS): a policy of more than one chunk's entries is written as chunks before
 * the record naming them, every message stays far below NATS's max payload, and a smaller policy
 * afterwards removes the chunks it no longer needs; a node whose policy needs more map entries than
 * the map holds is not written at all, is reported (delivery, counter), keeps its last good record,
 * and every other node's update is written in the same pass.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { NodePolicyChunk, NodePolicyRecord, NodeRecord, POLICY_CHUNK_ENTRIES, Policy, nodePolicyChunkKey, type PolicyInput } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityEntry } from "../identity/allocator.js";
import { ControllerCounters } from "../metrics/counters.js";
import { RecordStore } from "../store/kv.js";
import { BucketMirror, type NodeMirror } from "../store/mirror.js";
import { eventually, startTestController, type TestController } from "../testing.js";
import { NodePolicyPublisher } from "./publisher.js";

let t: TestController;
let kvs: Record<"policies" | "identities" | "nodes" | "nodePolicies", KV>;
let publisher: NodePolicyPublisher;
let nodes: NodeMirror;
const counters = new ControllerCounters();
const CAPACITY = 20_000;

const node = (n: number, spiffe: string): NodeRecord => ({
  version: 1,
  nodeId: `n-${n.toString(16).padStart(16, "0")}`,
  name: `node-${n}`,
  site: "lab",
  wireguardPublicKey: "mCxMPJ0zJCGk0c3lAUr5Lp4FvbDRWsJ1pP3tqJcBq0o=",
  natsPublicKey: "UDXU4RCSJNZOIQHZNWXHXMI2N7JBDDM7VQ6TQMVCKNDR2YUZEJAA5YAB",
  overlayAddress: `100.64.0.${n}`,
  endpoints: {},
  labels: {},
  identity: { id: 1000 + n, spiffeId: spiffe },
  joinKeyId: "",
  enrolledAt: "2030-01-01T00:00:00.000Z",
});
const A = node(1, "spiffe://weft.internal/ns/shop/sa/api");
const B = node(2, "spiffe://weft.internal/ns/shop/sa/db");
/** 64 ranges of 1018 ports (16 prefixes each), tcp and udp. */
const WIDE = Array.from({ length: 64 }, (_, i) => ({ protocol: "any" as const, port: 1024 * i + 3, endPort: 1024 * i + 1020 }));
const toA = (name: string, from: string): PolicyInput => ({ name, rules: [{ action: "allow", from: [{ namespace: from }], to: [{ identity: A.identity!.spiffeId }], ports: WIDE }] });

async function record(kv: KV, key: string): Promise<{ value: NodePolicyRecord; revision: number } | undefined> {
  const e = await kv.get(key);
  return e?.operation === "PUT" ? { value: NodePolicyRecord.parse(e.json()), revision: e.revision } : undefined;
}

beforeAll(async () => {
  t = await startTestController();
  const kvm = new Kvm(t.running.nc);
  kvs = {
    policies: await kvm.create("tp-policies", { history: 1 }),
    identities: await kvm.create("tp-identities", { history: 1 }),
    nodes: await kvm.create("tp-nodes", { history: 1 }),
    nodePolicies: await kvm.create("tp-node-policies", { history: 1 }),
  };
  // 40 source identities in namespace "many", 2 in "few".
  for (let i = 0; i < 40; i++) await kvs.identities.put(`spiffe.m${i}`, JSON.stringify({ id: 2000 + i, spiffeId: `spiffe://weft.internal/ns/many/sa/s${i}`, createdAt: "2030-01-01T00:00:00Z" }));
  for (let i = 0; i < 2; i++) await kvs.identities.put(`spiffe.f${i}`, JSON.stringify({ id: 3000 + i, spiffeId: `spiffe://weft.internal/ns/few/sa/s${i}`, createdAt: "2030-01-01T00:00:00Z" }));
  for (const n of [A, B]) await kvs.nodes.put(n.nodeId, JSON.stringify(n));
  nodes = await BucketMirror.start(new RecordStore(kvs.nodes, NodeRecord, "tp-nodes"), NodeRecord, { bucket: "tp-nodes", log: pino({ level: "silent" }) });
  publisher = await NodePolicyPublisher.start({
    stores: {
      policies: new RecordStore(kvs.policies, Policy, "tp-policies"),
      identities: new RecordStore(kvs.identities, IdentityEntry, "tp-identities"),
      nodePolicies: new RecordStore(kvs.nodePolicies, NodePolicyRecord, "tp-node-policies"),
      nodePolicyChunks: new RecordStore(kvs.nodePolicies, NodePolicyChunk, "tp-node-policies"),
    },
    nodes,
    counters,
    mapCapacity: CAPACITY,
    log: pino({ level: "silent" }),
  });
});
afterAll(async () => {
  await publisher?.stop();
  nodes?.stop();
  await t?.stop();
});

describe("bounded policy delivery", () => {
  it("delivery - a policy past one chunk goes in chunks written before its record; each message stays small; a smaller policy drops the spare chunks", async () => {
    // 2 sources × 64 ranges × tcp and udp = 256 intervals: one record. Then 40 sources: 5,120 intervals, 2 chunks… of 81,920 prefixes: too many for 20,000.
    await kvs.policies.put("few", JSON.stringify(Policy.parse(toA("few", "few"))));
    const small = await eventually(async () => ((await record(kvs.nodePolicies, A.nodeId))?.value.entryCount === 256 ? record(kvs.nodePolicies, A.nodeId) : undefined), 3000);
    expect([small?.value.entries.length, small?.value.chunks, small?.value.mapEntries], "entries inline, no chunks, 16 prefixes each").toEqual([256, undefined, 4096]);

    // More identities than one chunk of intervals, within the capacity: 9 single ports from 30 sources… use a rule of 1 port each range instead.
    const ports = Array.from({ length: 64 }, (_, i) => ({ protocol: "any" as const, port: 1000 * i + 7 }));
    await kvs.policies.put("many", JSON.stringify(Policy.parse({ name: "many", rules: [{ action: "allow", from: [{ namespace: "many" }], to: [{ identity: A.identity!.spiffeId }], ports }] })));
    const big = await eventually(async () => ((await record(kvs.nodePolicies, A.nodeId))?.value.chunks ? record(kvs.nodePolicies, A.nodeId) : undefined), 3000);
    const total = 256 + 40 * 64 * 2;
    expect([big?.value.entryCount, big?.value.entries.length, big?.value.chunks?.count], "5,376 entries in 2 chunks, none in the record").toEqual([total, 0, Math.ceil(total / POLICY_CHUNK_ENTRIES)]);
    const sizes: number[] = [];
    const joined: unknown[] = [];
    for (let i = 0; i < big!.value.chunks!.count; i++) {
      const e = await kvs.nodePolicies.get(nodePolicyChunkKey(A.nodeId, i));
      const chunk = NodePolicyChunk.parse(e?.json());
      expect([chunk.digest, chunk.index], `chunk ${i}`).toEqual([big!.value.chunks!.digest, i]);
      expect(e!.revision, `chunk ${i} written before the record`).toBeLessThan(big!.revision);
      sizes.push(e!.value.length);
      joined.push(...chunk.entries);
    }
    expect(joined.length, "entries across the chunks").toBe(total);
    expect(Math.max(...sizes), `chunk sizes ${sizes.join(", ")} bytes`).toBeLessThan(256 * 1024);

    await kvs.policies.delete("many");
    await eventually(async () => ((await record(kvs.nodePolicies, A.nodeId))?.value.entryCount === 256 ? true : undefined), 3000);
    const left = await eventually(async () => ((await kvs.nodePolicies.get(nodePolicyChunkKey(A.nodeId, 0)))?.operation !== "PUT" ? true : undefined), 3000);
    expect(left, "the chunks of the larger policy are gone").toBe(true);
    expect(publisher.delivery(A.nodeId), "delivered").toEqual({ state: "ok", mapEntries: 4096, capacity: CAPACITY });
  });

  it("delivery - an oversized policy for one node is not sent: it keeps its last good record, is reported and counted, and the other node's update arrives in the same pass", async () => {
    const before = await record(kvs.nodePolicies, A.nodeId);
    const bBefore = await record(kvs.nodePolicies, B.nodeId);
    await kvs.policies.put("huge", JSON.stringify(Policy.parse(toA("huge", "many")))); // 40 × 64 × 2 × 16 = 81,920 prefixes for A
    await kvs.policies.put("to-b", JSON.stringify(Policy.parse({ name: "to-b", rules: [{ action: "allow", from: [{ namespace: "few" }], to: [{ identity: B.identity!.spiffeId }], ports: [{ protocol: "tcp", port: 5432 }] }] })));
    const t0 = Date.now();
    const b = await eventually(async () => ((await record(kvs.nodePolicies, B.nodeId))?.value.policies.includes("to-b") ? record(kvs.nodePolicies, B.nodeId) : undefined), 2000, 10);
    const ms = Date.now() - t0;
    expect(b?.revision, `B's update (after ${ms} ms)`).toBeGreaterThan(bBefore?.revision ?? 0);
    expect(ms, "B's update within 2 s").toBeLessThan(2000);
    expect(publisher.delivery(A.nodeId), "A reported").toEqual({ state: "oversized", mapEntries: 4096 + 81_920, capacity: CAPACITY, since: expect.any(String) });
    expect((await record(kvs.nodePolicies, A.nodeId))?.revision, "A keeps its last good record").toBe(before?.revision);
    expect(counters.policyUndelivered.get({ reason: "oversized" }), "counted once").toBe(1);

    await kvs.policies.delete("huge");
    const back = await eventually(async () => (publisher.delivery(A.nodeId)?.state === "ok" ? true : undefined), 3000);
    expect(back, "A delivered again once it fits").toBe(true);
    expect(counters.policyUndelivered.get({ reason: "oversized" }), "still counted once").toBe(1);
  });
});
