/**
 * verifyAzureAttestation against attested documents signed under the Azure simulator's test PKI
 * (root → issuing CA → metadata.azure.com, only the signer in the PKCS#7): valid, another PKI,
 * a signer that is not Azure's metadata service, tampered content, expired, created in the
 * future, no enrollment nonce; and Microsoft's shipped roots refusing the test PKI.
 */
import { createAzureAttestedSigner, issuedRsa, selfSignedRsa, signPkcs7, type AzureAttestedSigner } from "@weft/cloud-sim";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAzureTime, verifyAzureAttestation } from "./azure.js";
import { InstanceIdentityConfig } from "./config.js";
import { parsePemCertificates } from "./pkcs7.js";
import { azureAttestation, rejection, simSigners, type AzureDoc, type SimSigners } from "./signed.fixture.js";
import { loadTrust } from "./trust.js";

let s: SimSigners;
let other: AzureAttestedSigner;
const doc: AzureDoc = { vmId: "5d7c0b6e-7a43-4f0b-9c1e-1f2d3c4b5a69", subscriptionId: "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10", nonce: "0123456789" };

beforeAll(async () => {
  [s, other] = await Promise.all([simSigners(), createAzureAttestedSigner()]);
});
afterAll(async () => {
  await s?.cleanup();
});

describe("azure attestation", () => {
  it("azure attestation - a document signed by metadata.azure.com under a trusted root names the VM, subscription and nonce", async () => {
    const got = await verifyAzureAttestation(await azureAttestation(s.azure, doc), s.trust.azure, new Date());
    expect(got, "attested instance").toEqual({
      provider: "azure",
      account: doc.subscriptionId,
      id: doc.vmId,
      privateIps: [],
      evidence: "Azure attested data PKCS#7 (signed by metadata.azure.com), nonce 0123456789",
      replay: { kind: "nonce", nonce: "0123456789" },
    });
  });

  it("azure attestation - without the intermediate the chain does not reach the root: untrusted", async () => {
    const got = await rejection(verifyAzureAttestation(await azureAttestation(s.azure, doc), { ...s.trust.azure, intermediates: [] }, new Date()));
    expect(got.reason, got.message).toBe("untrusted_signer");
  });

  it("azure attestation - a document from another PKI is refused as an untrusted signer", async () => {
    const got = await rejection(verifyAzureAttestation(await azureAttestation(other, doc), s.trust.azure, new Date()));
    expect(got.reason, got.message).toBe("untrusted_signer");
  });

  it("azure attestation - a certificate under a trusted root that is not Azure's metadata service is refused", async () => {
    const root = await selfSignedRsa("CN=test root", { ca: true });
    const leaf = await issuedRsa(root, "CN=evil.example.com", { ca: false, dnsNames: ["evil.example.com"] });
    const content = JSON.stringify({ nonce: doc.nonce, vmId: doc.vmId, subscriptionId: doc.subscriptionId, timeStamp: { createdOn: "01/01/26 00:00:00 -0000", expiresOn: "12/31/99 00:00:00 -0000" } });
    const signature = Buffer.from(await signPkcs7(new TextEncoder().encode(content), leaf, { signingTime: new Date(), certificates: [leaf] })).toString("base64");
    const got = await rejection(verifyAzureAttestation({ provider: "azure", signature }, { roots: parsePemCertificates(root.pem, "root"), intermediates: [], source: "test" }, new Date()));
    expect(got).toMatchObject({ reason: "untrusted_signer", message: expect.stringMatching(/signed by evil\.example\.com.*not by Azure's metadata service/) });
  });

  it("azure attestation - a byte changed in the signed content breaks the signature", async () => {
    const der = Buffer.from((await azureAttestation(s.azure, doc)).signature, "base64");
    const at = der.indexOf(Buffer.from(doc.vmId));
    expect(at, "the vmId is inside the PKCS#7").toBeGreaterThan(0);
    der[at] = der[at] === 0x35 ? 0x36 : 0x35;
    const got = await rejection(verifyAzureAttestation({ provider: "azure", signature: der.toString("base64") }, s.trust.azure, new Date()));
    expect(got.reason, got.message).toBe("bad_signature");
  });

  it("azure attestation - past timeStamp.expiresOn is expired; createdOn beyond the clock skew is not yet valid", async () => {
    const hour = 3_600_000;
    const expired = await rejection(verifyAzureAttestation(await azureAttestation(s.azure, { ...doc, createdOn: new Date(Date.now() - 7 * hour) }), s.trust.azure, new Date()));
    expect(expired).toMatchObject({ reason: "expired", message: expect.stringMatching(/expired at/) });
    const future = await rejection(verifyAzureAttestation(await azureAttestation(s.azure, { ...doc, createdOn: new Date(Date.now() + hour) }), s.trust.azure, new Date()));
    expect(future.reason, future.message).toBe("not_yet_valid");
  });

  it("azure attestation - a document without an enrollment nonce (IMDS's timestamp instead) is refused", async () => {
    const got = await rejection(verifyAzureAttestation(await azureAttestation(s.azure, { ...doc, nonce: "20261205-214552" }), s.trust.azure, new Date()));
    expect(got).toMatchObject({ reason: "unknown_nonce", message: expect.stringMatching(/POST \/v1\/enroll\/nonce/) });
  });

  it("azure attestation - Microsoft's shipped roots and intermediates refuse the test PKI", async () => {
    const shipped = await loadTrust(InstanceIdentityConfig.parse({}));
    const got = await rejection(verifyAzureAttestation(await azureAttestation(s.azure, doc), shipped.azure, new Date()));
    expect(got.reason, got.message).toBe("untrusted_signer");
  });

  it("azure attestation - IMDS timestamps parse as UTC with their offset; anything else does not", () => {
    expect(parseAzureTime("11/28/18 06:16:17 -0000")?.toISOString(), "IMDS form").toBe("2018-11-28T06:16:17.000Z");
    expect(parseAzureTime("11/28/18 06:16:17 +0130")?.toISOString(), "with an offset").toBe("2018-11-28T04:46:17.000Z");
    expect(["13/28/18 06:16:17 -0000", "2018-11-28T06:16:17Z", ""].map(parseAzureTime), "not IMDS timestamps").toEqual([undefined, undefined, undefined]);
  });
});
