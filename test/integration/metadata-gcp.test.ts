/**
 * readGcpIdentity against the simulator's metadata server bound on 127.0.0.1: the identity token
 * for the controller's audience (format=full), which verifies with the controller's verifier under
 * the simulator's JWKS as the calling instance; failures retryable only when the server may come back.
 */
import { createLocalJWKSet } from "jose";
import { startGcpSim, type GcpSim } from "@weft/cloud-sim";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyGcpAttestation } from "../../controller/src/attest/gcp.js";
import { GcpMetadataError, readGcpIdentity } from "../../agent/src/cloud/gcp.js";

const AUDIENCE = "https://controller.example:8080";
let sim: GcpSim;

beforeEach(async () => {
  sim = await startGcpSim({ project: "weft-agent", projectNumber: "123456789012", metadata: { host: "127.0.0.1", port: 0 } });
});

afterEach(async () => {
  await sim.close();
});

describe("gcp metadata reader", () => {
  it("gcp metadata - the identity token for the controller's audience verifies as the calling instance", async () => {
    sim.store.addInstance({ id: "9000000000000000042", name: "agent-vm", region: "asia-east1", zone: "asia-east1-c", network: "prod", privateIp: "127.0.0.1", tags: {} });
    sim.store.addInstance({ id: "9000000000000000043", name: "other", region: "us-central1", zone: "us-central1-a", network: "prod", privateIp: "10.0.0.9", tags: {} });
    const att = await readGcpIdentity({ endpoint: sim.metadataUrl!, audience: AUDIENCE });
    if (att.provider !== "gcp") throw new Error(`got a ${att.provider} attestation`);
    const got = await verifyGcpAttestation(att, { audience: AUDIENCE, keys: createLocalJWKSet(sim.identity.jwks), source: "sim" }, new Date());
    expect({ id: got.id, account: got.account, zone: got.zone, region: got.region }, "what the controller verifies").toEqual({ id: "9000000000000000042", account: "weft-agent", zone: "asia-east1-c", region: "asia-east1" });
  });

  it("gcp metadata - a token needs an audience: the reader refuses without one, the server answers 400", async () => {
    sim.store.addInstance({ id: "42", name: "agent-vm", region: "asia-east1", zone: "asia-east1-c", network: "prod", privateIp: "127.0.0.1", tags: {} });
    const err = await readGcpIdentity({ endpoint: sim.metadataUrl! }).catch((e: unknown) => e);
    expect([err instanceof GcpMetadataError, (err as GcpMetadataError).retryable], "reader without an audience").toEqual([true, false]);
    const res = await fetch(`${sim.metadataUrl!}/computeMetadata/v1/instance/service-accounts/default/identity`, { headers: { "Metadata-Flavor": "Google" } });
    expect(res.status, "server without an audience").toBe(400);
  });

  it("gcp metadata - no instance at this address is a non-retryable error", async () => {
    const err = await readGcpIdentity({ endpoint: sim.metadataUrl!, audience: AUDIENCE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GcpMetadataError);
    expect((err as GcpMetadataError).retryable).toBe(false);
    expect((err as GcpMetadataError).message).toMatch(/HTTP 404/);
  });

  it("gcp metadata - the server refuses a request without Metadata-Flavor", async () => {
    sim.store.addInstance({ id: "42", name: "agent-vm", region: "asia-east1", zone: "asia-east1-c", network: "prod", privateIp: "127.0.0.1", tags: {} });
    const res = await fetch(`${sim.metadataUrl!}/computeMetadata/v1/instance/service-accounts/default/identity?audience=x`);
    expect(res.status).toBe(403);
  });

  it("gcp metadata - an unreachable metadata server is retryable", async () => {
    const url = sim.metadataUrl!;
    await sim.close();
    const err = await readGcpIdentity({ endpoint: url, timeoutMs: 500, audience: AUDIENCE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GcpMetadataError);
    expect((err as GcpMetadataError).retryable).toBe(true);
    sim = await startGcpSim({ project: "weft-agent" });
  });
});
