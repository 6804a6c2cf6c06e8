import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startAwsSim, type AwsSim } from "@weft/cloud-sim";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAwsAttestation } from "../../controller/src/attest/aws.js";
import { parsePemCertificates } from "../../controller/src/attest/pkcs7.js";
import { AwsMetadataError, readAwsIdentity } from "../../agent/src/cloud/aws.js";

let sim: AwsSim;

beforeAll(async () => {
  // The caller is 127.0.0.1: register it as an instance, and serve metadata there.
  sim = await startAwsSim({ account: "210987654321", metadata: { host: "127.0.0.1", port: 0 } });
  sim.store.addInstance({ id: "i-0feedfacecafe0001", name: "agent-host", region: "ap-southeast-2", zone: "ap-southeast-2c", network: "vpc-1", privateIp: "127.0.0.1", tags: {} });
});
afterAll(async () => {
  await sim.close();
});

describe("aws metadata", () => {
  it("aws metadata - IMDSv2 token, then the identity document and its rsa2048 PKCS#7, which verify as this instance", async () => {
    const att = await readAwsIdentity({ endpoint: sim.metadataUrl, timeoutMs: 2_000 });
    expect(att.provider, "provider").toBe("aws");
    if (att.provider !== "aws") return;
    expect(JSON.parse(att.document), "the document as IMDS serves it").toMatchObject({ instanceId: "i-0feedfacecafe0001", accountId: "210987654321", privateIp: "127.0.0.1" });
    const trust = { byRegion: new Map([["*", parsePemCertificates(sim.identity.certificatePem, "sim")]]), source: "sim" };
    const got = await verifyAwsAttestation(att, trust, new Date());
    expect({ id: got.id, account: got.account, region: got.region, zone: got.zone }, "what the controller verifies").toEqual({ id: "i-0feedfacecafe0001", account: "210987654321", region: "ap-southeast-2", zone: "ap-southeast-2c" });
  });

  it("aws metadata - the document and its signature without a token are refused (401)", async () => {
    for (const path of ["document", "rsa2048"]) {
      const res = await fetch(`${sim.metadataUrl}/latest/dynamic/instance-identity/${path}`);
      expect(res.status, path).toBe(401);
    }
  });

  it("aws metadata - an address that is no instance fails clearly, not retryable", async () => {
    const inst = sim.store.instance("i-0feedfacecafe0001");
    inst.privateIp = "10.9.9.9";
    try {
      const err = await readAwsIdentity({ endpoint: sim.metadataUrl }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AwsMetadataError);
      expect([(err as AwsMetadataError).status, (err as AwsMetadataError).retryable]).toEqual([404, false]);
      expect((err as Error).message).toMatch(/^aws metadata: GET \/latest\/dynamic\/instance-identity\/document: HTTP 404/);
    } finally {
      inst.privateIp = "127.0.0.1";
    }
  });

  it("aws metadata - nothing listening is a retryable error", async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const err = await readAwsIdentity({ endpoint: `http://127.0.0.1:${port}` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsMetadataError);
    expect((err as AwsMetadataError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/PUT \/latest\/api\/token: cannot reach/);
  });

  it("aws metadata - a silent service times out", async () => {
    const s = createServer(() => {}); // accepts, never answers
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    try {
      const started = Date.now();
      const err = await readAwsIdentity({ endpoint: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, timeoutMs: 200 }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/no answer within 200 ms/);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});
