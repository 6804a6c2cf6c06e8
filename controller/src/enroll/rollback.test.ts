/**
 * An enrollment that fails after its one-time key was consumed (here: the node
 * record cannot be written) leaves nothing behind and gives the key's use back,
 * so the operator's key still works for the retry; one that fails after binding
 * an instance releases the binding and its signed document's use.
 */
import { Kvm } from "@nats-io/kv";
import { Buckets, EnrollRequest, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AddressAllocator } from "../ipam/allocator.js";
import { PrefixAllocator } from "../ipam/prefixes.js";
import { Claim, Claims } from "../ipam/claims.js";
import { InventoryStore } from "../inventory/store.js";
import { JoinKeys, StoredJoinKey } from "../keys/joinkeys.js";
import type { NodeRegistry } from "../nodes/registry.js";
import { AttestationMark, AttestationMarks, EnrollNonces, InstanceAttestor, NonceRecord } from "../attest/index.js";
import { awsAttestation, simSigners } from "../attest/signed.fixture.js";
import { RecordStore } from "../store/kv.js";
import { agentIdentity, assertNothingStored, startTestController, storedState, type TestController } from "../testing.js";
import { Enrollment } from "./enroll.js";

describe("enrollment rollback", () => {
  let t: TestController;
  beforeAll(async () => {
    t = await startTestController();
  });
  afterAll(async () => t?.stop());

  it("enrollment - a failure after the key was consumed stores nothing and leaves a one-time key usable", async () => {
    const kvm = new Kvm(t.running.nc);
    const claims = new Claims(new RecordStore(await kvm.open(Buckets.ipam), Claim, Buckets.ipam));
    const joinKeys = new JoinKeys(new RecordStore(await kvm.open(Buckets.keys), StoredJoinKey, Buckets.keys));
    const failingRegistry = { add: async () => Promise.reject(new Error("store write failed")) } as unknown as NodeRegistry;
    const enrollment = new Enrollment({
      joinKeys,
      claims,
      allocator: new AddressAllocator(claims, "100.64.0.0/16"),
      prefixes: new PrefixAllocator(claims, "100.80.0.0/12", 24),
      registry: failingRegistry,
      issueAgentJwt: async () => "jwt",
      allocateIdentity: async (spiffeId) => ({ id: 256, spiffeId }),
      trustDomain: "weft.internal",
      natsServersFor: () => ["tls://127.0.0.1:4222"],
      natsCaPem: "",
      heartbeatSeconds: 5,
      log: pino({ level: "silent" }),
    });
    const key = await t.client.createJoinKey({ reusable: false });
    const before = await storedState(t);

    await expect(enrollment.enroll(EnrollRequest.parse(agentIdentity(key.key, generateKeyPair().publicKey).body)), "enroll with a failing node write").rejects.toThrow(/store write failed/);

    await assertNothingStored(t, before, "enrollment whose node write failed");
    const after = (await t.client.listJoinKeys()).find((k) => k.id === key.id);
    expect({ uses: after?.uses, state: after?.state }, "one-time key after the failed enrollment").toEqual({ uses: 0, state: "active" });
    const retry = await t.client.raw("POST", "/v1/enroll", JSON.stringify(agentIdentity(key.key, generateKeyPair().publicKey).body));
    expect(retry.status, `retry with the same one-time key: ${retry.text}`).toBe(201);
  });

  it("enrollment - a failure after the instance was bound releases the binding and the document's use", async () => {
    const kvm = new Kvm(t.running.nc);
    const claims = new Claims(new RecordStore(await kvm.open(Buckets.ipam), Claim, Buckets.ipam));
    const inventory = new InventoryStore(await kvm.open(Buckets.inventory));
    const instance = {
      provider: "aws" as const,
      account: "111111111111",
      region: "eu-west-1",
      network: "vpc-1",
      id: "i-0000000000000ba11",
      name: "rollback",
      privateIps: ["10.0.0.9"],
      publicIps: [],
      tags: {},
      state: "running" as const,
      seenAt: new Date().toISOString(),
    };
    await inventory.upsertInstance(instance, () => false);
    const signers = await simSigners();
    const marks = new AttestationMarks(new RecordStore(await kvm.open(Buckets.attestations), AttestationMark, Buckets.attestations));
    const attestor = new InstanceAttestor({
      trust: signers.trust,
      nonces: new EnrollNonces(new RecordStore(await kvm.open(Buckets.enrollNonces), NonceRecord, Buckets.enrollNonces), 120),
      marks,
      sourceAddress: "instance",
    });
    const enrollment = new Enrollment({
      joinKeys: new JoinKeys(new RecordStore(await kvm.open(Buckets.keys), StoredJoinKey, Buckets.keys)),
      claims,
      allocator: new AddressAllocator(claims, "100.64.0.0/16"),
      prefixes: new PrefixAllocator(claims, "100.80.0.0/12", 24),
      registry: { add: async () => Promise.reject(new Error("store write failed")), get: async () => Promise.reject(new Error("no node")) } as unknown as NodeRegistry,
      issueAgentJwt: async () => "jwt",
      allocateIdentity: async (spiffeId) => ({ id: 256, spiffeId }),
      trustDomain: "weft.internal",
      natsServersFor: () => ["tls://127.0.0.1:4222"],
      natsCaPem: "",
      heartbeatSeconds: 5,
      inventory,
      attestor,
      policies: { list: async () => [{ name: "any-aws", selector: { provider: "aws" }, labels: {} }] },
      log: pino({ level: "silent" }),
    });
    const before = await storedState(t);
    const body = agentIdentity("unused", generateKeyPair().publicKey).body;
    delete body["joinKey"];
    const doc = await awsAttestation(signers.aws, { accountId: instance.account, instanceId: instance.id, region: instance.region, availabilityZone: "eu-west-1a", pendingTime: "2026-12-01T00:00:00Z", privateIp: "10.0.0.9" });
    body["attestation"] = doc;

    try {
      await expect(enrollment.enroll(EnrollRequest.parse(body), { observedAddress: "10.0.0.9" }), "keyless enroll with a failing node write").rejects.toThrow(/store write failed/);

      await assertNothingStored(t, before, "keyless enrollment whose node write failed");
      const after = await inventory.instance("aws", instance.account, instance.id);
      expect(after?.boundNode, "binding after the failed enrollment").toBeUndefined();
      const attested = await attestor.verify(doc);
      expect(attested.id, "the document is usable again after the rollback").toBe(instance.id);
    } finally {
      await signers.cleanup();
    }
  });
});
