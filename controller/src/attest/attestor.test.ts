/**
 * Replay protection on a real NATS (the test controller's JetStream KV): enrollment nonces are
 * issued, used once, and refused when unknown, expired, used or raced; the marks of AWS launches
 * and GCP tokens accept each document once (and only newer ones after it), an undo puts a mark
 * back, and of two uses at once one wins. InstanceAttestor ties verification and use together.
 */
import { Kvm } from "@nats-io/kv";
import { Buckets } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordStore } from "../store/kv.js";
import { startTestController, type TestController } from "../testing.js";
import { InstanceAttestor } from "./attestor.js";
import { AttestationMark, AttestationMarks } from "./marks.js";
import { EnrollNonces, NonceRecord } from "./nonces.js";
import { awsAttestation, azureAttestation, gcpAttestation, rejection, simSigners, type SimSigners } from "./signed.fixture.js";
import type { AttestedInstance } from "./types.js";

let t: TestController;
let s: SimSigners;
let nonceStore: RecordStore<typeof NonceRecord>;
let marks: AttestationMarks;

beforeAll(async () => {
  [t, s] = await Promise.all([startTestController(), simSigners()]);
  const kvm = new Kvm(t.running.nc);
  nonceStore = new RecordStore(await kvm.open(Buckets.enrollNonces), NonceRecord, Buckets.enrollNonces);
  marks = new AttestationMarks(new RecordStore(await kvm.open(Buckets.attestations), AttestationMark, Buckets.attestations));
});
afterAll(async () => {
  await Promise.all([t?.stop(), s?.cleanup()]);
});

let n = 0;
const launch = (marker: number): AttestedInstance => ({
  provider: "aws",
  account: "111122223333",
  id: `i-0aaaaaaaaaaaa${String(++n).padStart(4, "0")}`,
  region: "eu-west-1",
  privateIps: [],
  evidence: "test",
  replay: { kind: "launch", marker, label: `launch ${new Date(marker).toISOString()}` },
});

describe("enrollment nonces", () => {
  it("nonces - ten random digits, stored unused until the TTL; used once, then refused as replayed", async () => {
    const nonces = new EnrollNonces(nonceStore, 120);
    const before = Date.now();
    const got = await nonces.issue();
    expect(got.nonce, "nonce").toMatch(/^[0-9]{10}$/);
    expect(Date.parse(got.expiresAt) - before, "lifetime ms").toBeGreaterThanOrEqual(119_000);
    await nonces.check(got.nonce);
    await nonces.consume(got.nonce, "n-0000000000000001");
    expect(await rejection(nonces.check(got.nonce)), "checked after use").toMatchObject({ reason: "replayed", message: expect.stringMatching(/already used/) });
    expect((await rejection(nonces.consume(got.nonce, "n-0000000000000002"))).reason, "used twice").toBe("replayed");
    expect((await nonceStore.get(`azure.${got.nonce}`))?.value.usedBy, "recorded user").toBe("n-0000000000000001");
  });

  it("nonces - one this controller never issued, and one past its TTL, are unknown", async () => {
    let now = new Date();
    const nonces = new EnrollNonces(nonceStore, 10, () => now);
    expect(await rejection(nonces.check("0000000000")), "never issued").toMatchObject({ reason: "unknown_nonce", message: expect.stringMatching(/not issued by this controller/) });
    const got = await nonces.issue();
    now = new Date(now.getTime() + 11_000);
    expect(await rejection(nonces.consume(got.nonce, "n-0000000000000003")), "expired").toMatchObject({ reason: "unknown_nonce", message: expect.stringMatching(/expired at/) });
  });

  it("nonces - two enrollments consuming one nonce at once: exactly one succeeds", async () => {
    const nonces = new EnrollNonces(nonceStore, 120);
    const { nonce } = await nonces.issue();
    const results = await Promise.allSettled([nonces.consume(nonce, "n-00000000000000a1"), nonces.consume(nonce, "n-00000000000000a2"), nonces.consume(nonce, "n-00000000000000a3")]);
    expect(results.map((r) => r.status).sort(), "outcomes").toEqual(["fulfilled", "rejected", "rejected"]);
  });
});

describe("attestation marks", () => {
  it("marks - a launch enrolls once; the same or an older launch is replayed; a newer one enrolls", async () => {
    const first = launch(Date.parse("2026-11-01T00:00:00Z"));
    await marks.check(first);
    await marks.mark(first, "n-00000000000000b1");
    expect(await rejection(marks.check(first)), "same launch again").toMatchObject({ reason: "replayed", message: expect.stringMatching(/this launch 2026-11-01T00:00:00\.000Z was already used to enroll node n-00000000000000b1.*stop and start the instance/) });
    const older = { ...first, replay: { ...first.replay, marker: first.replay.kind === "launch" ? first.replay.marker - 1000 : 0 } } as AttestedInstance;
    expect((await rejection(marks.mark(older, "n-00000000000000b2"))).reason, "older launch").toBe("replayed");
    const newer = { ...first, replay: { kind: "launch", marker: Date.parse("2026-11-02T00:00:00Z"), label: "launch 2026-11-02" } } as AttestedInstance;
    await marks.mark(newer, "n-00000000000000b3");
  });

  it("marks - the undo of a failed enrollment puts back what was there (nothing, or the previous mark)", async () => {
    const a = launch(1_000_000);
    const undo = await marks.mark(a, "n-00000000000000c1");
    await undo();
    await marks.check(a);
    await marks.mark(a, "n-00000000000000c2");
    const b = { ...a, replay: { kind: "launch", marker: 2_000_000, label: "later" } } as AttestedInstance;
    const undoB = await marks.mark(b, "n-00000000000000c3");
    await undoB();
    expect(await rejection(marks.check(a)), "the first mark is back").toMatchObject({ reason: "replayed", message: expect.stringMatching(/node n-00000000000000c2/) });
  });

  it("marks - one document used twice at once: exactly one mark is written", async () => {
    const a = launch(5_000_000);
    const results = await Promise.allSettled([marks.mark(a, "n-00000000000000d1"), marks.mark(a, "n-00000000000000d2")]);
    expect(results.map((r) => r.status).sort(), "outcomes").toEqual(["fulfilled", "rejected"]);
  });
});

describe("instance attestor", () => {
  const attestor = () => new InstanceAttestor({ trust: s.trust, nonces: new EnrollNonces(nonceStore, 120), marks, sourceAddress: "not-another-instance" });

  it("attestor - an AWS document verifies, is used once, and is replayed after", async () => {
    const a = attestor();
    const att = await awsAttestation(s.aws, { accountId: "111122223333", instanceId: "i-0bbbbbbbbbbbb0001", region: "eu-west-1", availabilityZone: "eu-west-1a", pendingTime: "2026-12-01T10:00:00Z", privateIp: "10.0.0.9" });
    const got = await a.verify(att);
    await a.consume(got, "n-00000000000000e1");
    expect(await rejection(a.verify(att)), "the same document again").toMatchObject({ reason: "replayed" });
  });

  it("attestor - an Azure document must carry a nonce this controller issued, and is good once", async () => {
    const a = attestor();
    const doc = { vmId: "0b9e1c3a-5d2f-4e6a-9b8c-7d6e5f4a3b2c", subscriptionId: "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10" };
    expect((await rejection(a.verify(await azureAttestation(s.azure, { ...doc, nonce: "9999999999" })))).reason, "a nonce never issued").toBe("unknown_nonce");
    const { nonce } = await a.issueNonce();
    const att = await azureAttestation(s.azure, { ...doc, nonce });
    await a.consume(await a.verify(att), "n-00000000000000e2");
    expect((await rejection(a.verify(att))).reason, "replayed nonce").toBe("replayed");
  });

  it("attestor - a GCP token is good once; a later token for the same instance enrolls again", async () => {
    const a = attestor();
    const doc = { instanceId: "9000000000000000777", projectId: "weft-lab", zone: "europe-west1-b" };
    const att = await gcpAttestation(s.gcp, { ...doc, issuedAt: new Date(Date.now() - 60_000) });
    await a.consume(await a.verify(att), "n-00000000000000e3");
    expect((await rejection(a.verify(att))).reason, "the same token again").toBe("replayed");
    await a.verify(await gcpAttestation(s.gcp, { ...doc, issuedAt: new Date(Date.now() - 1000) }));
  });
});
