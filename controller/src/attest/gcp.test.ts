/**
 * verifyGcpAttestation against identity tokens signed by the GCE simulator's key (published as a
 * JWKS): valid, another key, a tampered payload, expired, another audience, no audience configured,
 * no compute_engine claims (format=standard); and the shipped copy of Google's keys refusing it.
 */
import { createGcpIdentitySigner, type GcpIdentitySigner } from "@weft/cloud-sim";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InstanceIdentityConfig } from "./config.js";
import { verifyGcpAttestation } from "./gcp.js";
import { gcpAttestation, rejection, simSigners, TEST_AUDIENCE, type GcpDoc, type SimSigners } from "./signed.fixture.js";
import { loadTrust } from "./trust.js";

let s: SimSigners;
let other: GcpIdentitySigner;
const doc: GcpDoc = { instanceId: "9000000000000000042", projectId: "weft-lab", zone: "europe-west1-b" };

beforeAll(async () => {
  [s, other] = await Promise.all([simSigners(), createGcpIdentitySigner()]);
});
afterAll(async () => {
  await s?.cleanup();
});

describe("gcp attestation", () => {
  it("gcp attestation - a token from the trusted key for this audience names the instance, project, zone and region", async () => {
    const issuedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 5000);
    const got = await verifyGcpAttestation(await gcpAttestation(s.gcp, { ...doc, issuedAt }), s.trust.gcp, new Date());
    expect(got, "attested instance").toEqual({
      provider: "gcp",
      account: "weft-lab",
      id: "9000000000000000042",
      zone: "europe-west1-b",
      region: "europe-west1",
      privateIps: [],
      evidence: `GCP identity token (RS256, aud ${TEST_AUDIENCE}, iat ${issuedAt.toISOString()})`,
      replay: { kind: "token", marker: issuedAt.getTime(), label: `token issued ${issuedAt.toISOString()}` },
    });
  });

  it("gcp attestation - a token signed by another key is refused as an untrusted signer", async () => {
    const got = await rejection(verifyGcpAttestation(await gcpAttestation(other, doc), s.trust.gcp, new Date()));
    expect(got.reason, got.message).toBe("untrusted_signer");
  });

  it("gcp attestation - a payload edited after signing breaks the signature", async () => {
    const [h, p, sig] = (await gcpAttestation(s.gcp, doc)).token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as { google: { compute_engine: { instance_id: string } } };
    claims.google.compute_engine.instance_id = "9000000000000000043";
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${sig}`;
    const got = await rejection(verifyGcpAttestation({ provider: "gcp", token: forged }, s.trust.gcp, new Date()));
    expect(got.reason, got.message).toBe("bad_signature");
  });

  it("gcp attestation - an expired token and one issued in the future are refused", async () => {
    const expired = await rejection(verifyGcpAttestation(await gcpAttestation(s.gcp, { ...doc, issuedAt: new Date(Date.now() - 2 * 3_600_000) }), s.trust.gcp, new Date()));
    expect(expired).toMatchObject({ reason: "expired", message: expect.stringMatching(/expired \(exp /) });
    const future = await rejection(verifyGcpAttestation(await gcpAttestation(s.gcp, { ...doc, issuedAt: new Date(Date.now() + 600_000) }), s.trust.gcp, new Date()));
    expect(future.reason, future.message).toBe("not_yet_valid");
  });

  it("gcp attestation - a token for another audience is refused, naming the audience this controller wants", async () => {
    const got = await rejection(verifyGcpAttestation(await gcpAttestation(s.gcp, { ...doc, audience: "https://other.service.example" }), s.trust.gcp, new Date()));
    expect(got).toMatchObject({ reason: "wrong_audience", message: expect.stringMatching(/"https:\/\/other\.service\.example" is not this controller's \(https:\/\/controller\.test:8080\)/) });
  });

  it("gcp attestation - with no audience configured every token is refused as not configured", async () => {
    const got = await rejection(verifyGcpAttestation(await gcpAttestation(s.gcp, doc), { ...s.trust.gcp, audience: undefined }, new Date()));
    expect(got).toMatchObject({ reason: "not_configured", message: expect.stringMatching(/inventory\.instanceIdentity\.gcp\.audience/) });
  });

  it("gcp attestation - a format=standard token (no compute_engine claims) is malformed", async () => {
    const got = await rejection(verifyGcpAttestation(await gcpAttestation(s.gcp, { ...doc, full: false }), s.trust.gcp, new Date()));
    expect(got).toMatchObject({ reason: "malformed", message: expect.stringMatching(/format=full/) });
  });

  it("gcp attestation - the shipped copy of Google's keys does not know the test key", async () => {
    const shipped = await loadTrust(InstanceIdentityConfig.parse({ gcp: { audience: TEST_AUDIENCE } }));
    const got = await rejection(verifyGcpAttestation(await gcpAttestation(s.gcp, doc), shipped.gcp, new Date()));
    expect(got).toMatchObject({ reason: "untrusted_signer", message: expect.stringMatching(/jwksUrl/) });
  });
});
