import { InstanceIdentityClaim } from "@weft/protocol";
import { startGcpSim, type GcpSim } from "@weft/cloud-sim";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GcpMetadataError, readGcpIdentity } from "./gcp.js";

let sim: GcpSim;

beforeEach(async () => {
  sim = await startGcpSim({ project: "weft-agent", projectNumber: "123456789012", metadata: { host: "127.0.0.1", port: 0 } });
});

afterEach(async () => {
  await sim.close();
});

describe("gcp metadata reader", () => {
  it("gcp metadata - reads the calling instance's identity by its address", async () => {
    sim.store.addInstance({ id: "9000000000000000042", name: "agent-vm", region: "asia-east1", zone: "asia-east1-c", network: "prod", privateIp: "127.0.0.1", tags: {} });
    sim.store.addInstance({ id: "9000000000000000043", name: "other", region: "us-central1", zone: "us-central1-a", network: "prod", privateIp: "10.0.0.9", tags: {} });
    const claim = await readGcpIdentity({ endpoint: sim.metadataUrl! });
    expect(claim).toEqual({ provider: "gcp", id: "9000000000000000042", account: "weft-agent", region: "asia-east1", zone: "asia-east1-c" });
    expect(InstanceIdentityClaim.parse(claim)).toEqual(claim);
  });

  it("gcp metadata - no instance at this address is a non-retryable error", async () => {
    const err = await readGcpIdentity({ endpoint: sim.metadataUrl! }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GcpMetadataError);
    expect((err as GcpMetadataError).retryable).toBe(false);
    expect((err as GcpMetadataError).message).toMatch(/HTTP 404/);
  });

  it("gcp metadata - the server refuses a request without Metadata-Flavor", async () => {
    sim.store.addInstance({ id: "42", name: "agent-vm", region: "asia-east1", zone: "asia-east1-c", network: "prod", privateIp: "127.0.0.1", tags: {} });
    const res = await fetch(`${sim.metadataUrl!}/computeMetadata/v1/instance/id`);
    expect(res.status).toBe(403);
  });

  it("gcp metadata - an unreachable metadata server is retryable", async () => {
    const url = sim.metadataUrl!;
    await sim.close();
    const err = await readGcpIdentity({ endpoint: url, timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GcpMetadataError);
    expect((err as GcpMetadataError).retryable).toBe(true);
    sim = await startGcpSim({ project: "weft-agent" });
  });
});
