/**
 * readAzureIdentity against the simulator's instance metadata service bound on 127.0.0.1; the
 * simulated VM is the one whose private address is 127.0.0.1, as IMDS identifies its caller. The
 * attested document it returns verifies, with the controller's verifier, under the simulator's
 * test PKI and carries the nonce asked for.
 */
import { startAzureSim, type AzureSim } from "@weft/cloud-sim";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyAzureAttestation } from "../../controller/src/attest/azure.js";
import { parsePemCertificates } from "../../controller/src/attest/pkcs7.js";
import { AzureMetadataError, readAzureIdentity } from "../../agent/src/cloud/azure.js";

const SUB = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const VM = "5d7c0b6e-7a43-4f0b-9c1e-1f2d3c4b5a69";
let sim: AzureSim;

beforeEach(async () => {
  sim = await startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB, metadata: { host: "127.0.0.1", port: 0 } });
});
afterEach(async () => {
  await sim.close();
});

describe("azure metadata", () => {
  it("azure metadata - the attested document for a nonce verifies as the caller's VM and subscription, with that nonce", async () => {
    sim.store.addInstance({ id: VM, name: "agent-vm", region: "uksouth", zone: "2", network: "vnet", privateIp: "127.0.0.1", tags: {} });
    sim.store.addInstance({ id: "0b9e1c3a-5d2f-4e6a-9b8c-7d6e5f4a3b2c", name: "other-vm", region: "eastus", network: "vnet", privateIp: "10.9.9.9", tags: {} });
    const att = await readAzureIdentity({ endpoint: sim.metadataUrl!, nonce: "0123456789" });
    if (att.provider !== "azure") throw new Error(`got a ${att.provider} attestation`);
    const trust = { roots: parsePemCertificates(sim.identity.rootPem, "root"), intermediates: parsePemCertificates(sim.identity.intermediatePem, "intermediate"), source: "sim" };
    const got = await verifyAzureAttestation(att, trust, new Date());
    expect({ id: got.id, account: got.account, replay: got.replay }, "what the controller verifies").toEqual({ id: VM, account: SUB, replay: { kind: "nonce", nonce: "0123456789" } });
  });

  it("azure metadata - without the controller's nonce the reader refuses; IMDS refuses a malformed nonce (400), not retryable", async () => {
    sim.store.addInstance({ id: VM, name: "agent-vm", region: "westus", network: "vnet", privateIp: "127.0.0.1", tags: {} });
    const none = await readAzureIdentity({ endpoint: sim.metadataUrl! }).catch((e: unknown) => e);
    expect([none instanceof AzureMetadataError, (none as AzureMetadataError).retryable], "no nonce").toEqual([true, false]);
    const bad = await readAzureIdentity({ endpoint: sim.metadataUrl!, nonce: "not a nonce!" }).catch((e: unknown) => e);
    expect(bad, "malformed nonce").toBeInstanceOf(AzureMetadataError);
    expect([(bad as AzureMetadataError).status, (bad as AzureMetadataError).retryable, (bad as Error).message], "status, retryable, message").toEqual([400, false, expect.stringMatching(/HTTP 400 \(Bad request\. Nonce/)]);
  });

  it("azure metadata - an address that is no VM's is a non-retryable 404", async () => {
    const err = await readAzureIdentity({ endpoint: sim.metadataUrl!, nonce: "0123456789" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AzureMetadataError);
    expect([(err as AzureMetadataError).status, (err as AzureMetadataError).retryable]).toEqual([404, false]);
  });

  it("azure metadata - an unreachable service is retryable", async () => {
    const url = sim.metadataUrl!;
    await sim.close();
    const err = await readAzureIdentity({ endpoint: url, timeoutMs: 500, nonce: "0123456789" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AzureMetadataError);
    expect((err as AzureMetadataError).retryable).toBe(true);
    sim = await startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB });
  });
});
