/**
 * verifyAwsAttestation against documents signed by the AWS simulator's signer (a per-run RSA-2048
 * certificate, as AWS publishes one per region): valid, another signer, tampered document or
 * signature, a region without a certificate, and AWS's shipped certificates refusing a test key.
 */
import { readFile } from "node:fs/promises";
import { createAwsIdentitySigner, type AwsIdentitySigner } from "@weft/cloud-sim";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAwsAttestation } from "./aws.js";
import { InstanceIdentityConfig } from "./config.js";
import { parsePemCertificates } from "./pkcs7.js";
import { awsAttestation, rejection, simSigners, type AwsDoc, type SimSigners } from "./signed.fixture.js";
import { loadTrust, type AwsTrust } from "./trust.js";

let s: SimSigners;
let other: AwsIdentitySigner;
const doc: AwsDoc = {
  accountId: "111122223333",
  instanceId: "i-0123456789abcdef0",
  region: "eu-west-1",
  availabilityZone: "eu-west-1b",
  pendingTime: "2026-11-30T08:15:00Z",
  privateIp: "10.1.2.3",
};

beforeAll(async () => {
  [s, other] = await Promise.all([simSigners(), createAwsIdentitySigner()]);
});
afterAll(async () => {
  await s?.cleanup();
});

describe("aws attestation", () => {
  it("aws attestation - a document signed by the trusted certificate names its instance, account, region, zone, address and launch", async () => {
    const got = await verifyAwsAttestation(await awsAttestation(s.aws, doc), s.trust.aws, new Date());
    expect(got, "attested instance").toEqual({
      provider: "aws",
      account: "111122223333",
      id: "i-0123456789abcdef0",
      region: "eu-west-1",
      zone: "eu-west-1b",
      privateIps: ["10.1.2.3"],
      evidence: "AWS RSA-2048 PKCS#7 (certificate for any region), launch 2026-11-30T08:15:00Z",
      replay: { kind: "launch", marker: Date.parse("2026-11-30T08:15:00Z"), label: "launch 2026-11-30T08:15:00Z" },
    });
  });

  it("aws attestation - the certificate is picked by the signed region; a region-only certificate is used for its region alone", async () => {
    const cert = parsePemCertificates(s.aws.certificatePem, "sim");
    const trust: AwsTrust = { byRegion: new Map([["eu-west-1", cert]]), source: "test" };
    expect((await verifyAwsAttestation(await awsAttestation(s.aws, doc), trust, new Date())).evidence, "evidence").toMatch(/eu-west-1 certificate/);
    const elsewhere = await rejection(verifyAwsAttestation(await awsAttestation(s.aws, { ...doc, region: "us-east-2", availabilityZone: "us-east-2a" }), trust, new Date()));
    expect(elsewhere, "a document of a region with no certificate").toMatchObject({ reason: "unknown_region", message: expect.stringMatching(/no certificate for region us-east-2/) });
  });

  it("aws attestation - a signing certificate without extensions (as AWS's older regions' are) verifies too", async () => {
    const bare = await createAwsIdentitySigner({ bare: true });
    const trust: AwsTrust = { byRegion: new Map([["eu-west-1", parsePemCertificates(bare.certificatePem, "bare")]]), source: "test" };
    expect((await verifyAwsAttestation(await awsAttestation(bare, doc), trust, new Date())).id, "instance id").toBe(doc.instanceId);
  });

  it("aws attestation - a document signed by another key is refused as an untrusted signer", async () => {
    const got = await rejection(verifyAwsAttestation(await awsAttestation(other, doc), s.trust.aws, new Date()));
    expect(got.reason, got.message).toBe("untrusted_signer");
  });

  it("aws attestation - a document edited after signing is refused, whether the text or the signed content changed", async () => {
    const att = await awsAttestation(s.aws, doc);
    const text = await rejection(verifyAwsAttestation({ ...att, document: att.document.replace("i-0123456789abcdef0", "i-0fedcba9876543210") }, s.trust.aws, new Date()));
    expect(text, "document text differs from the signed content").toMatchObject({ reason: "bad_signature", message: expect.stringMatching(/differs from the one AWS signed/) });
    // Flip a byte inside the signed content (the instance id) in the DER itself.
    const der = Buffer.from(att.signature.replace(/\s+/g, ""), "base64");
    const at = der.indexOf(Buffer.from("i-0123456789abcdef0"));
    expect(at, "the content is inside the PKCS#7").toBeGreaterThan(0);
    der[at + 2] = "f".charCodeAt(0);
    const tampered = { provider: "aws" as const, document: att.document.replace("i-0123456789abcdef0", "i-0f23456789abcdef0"), signature: der.toString("base64") };
    const content = await rejection(verifyAwsAttestation(tampered, s.trust.aws, new Date()));
    expect(content.reason, content.message).toBe("bad_signature");
  });

  it("aws attestation - garbage and documents without the fields AWS always sends are malformed", async () => {
    expect((await rejection(verifyAwsAttestation({ provider: "aws", document: "{}", signature: "bm90IGEgcGtjczcgYXQgYWxs" }, s.trust.aws, new Date()))).reason, "not a PKCS#7").toBe("malformed");
    const noId = await rejection(verifyAwsAttestation(await awsAttestation(s.aws, { ...doc, instanceId: "" }), s.trust.aws, new Date()));
    expect(noId, "no instance id").toMatchObject({ reason: "malformed", message: expect.stringMatching(/instanceId/) });
  });

  it("aws attestation - a real document AWS signed (ap-southeast-2) verifies against the shipped certificate, and not against another region's", async () => {
    const real = JSON.parse(await readFile(new URL("./testdata/aws-rsa2048-ap-southeast-2.json", import.meta.url), "utf8")) as { document: string; signature: string };
    const shipped = await loadTrust(InstanceIdentityConfig.parse({}));
    const got = await verifyAwsAttestation({ provider: "aws", ...real }, shipped.aws, new Date());
    expect({ account: got.account, id: got.id, region: got.region, zone: got.zone, privateIps: got.privateIps, replay: got.replay }, "the real instance").toEqual({
      account: "189292791360",
      id: "i-0c5541936caf78c12",
      region: "ap-southeast-2",
      zone: "ap-southeast-2a",
      privateIps: ["10.0.1.242"],
      replay: { kind: "launch", marker: Date.parse("2026-02-16T00:38:27Z"), label: "launch 2026-02-16T00:38:27Z" },
    });
    const sydneyOnly = new Map([["ap-southeast-2", shipped.aws.byRegion.get("eu-west-1")!]]);
    const wrong = await rejection(verifyAwsAttestation({ provider: "aws", ...real }, { byRegion: sydneyOnly, source: "test" }, new Date()));
    expect(wrong.reason, `eu-west-1's certificate for a Sydney document: ${wrong.message}`).toBe("untrusted_signer");
  });

  it("aws attestation - AWS's shipped certificates (39 regions) refuse a document signed by a test key", async () => {
    const shipped = await loadTrust(InstanceIdentityConfig.parse({}));
    expect(shipped.aws.byRegion.size, "regions shipped").toBe(39);
    const got = await rejection(verifyAwsAttestation(await awsAttestation(s.aws, doc), shipped.aws, new Date()));
    expect(got, "test-signed document against AWS's eu-west-1 certificate").toMatchObject({ reason: "untrusted_signer", message: expect.stringMatching(/not signed by the certificate for region eu-west-1/) });
  });
});
