/**
 * readAzureIdentity against the simulator's instance metadata service bound on 127.0.0.1; the
 * simulated VM is the one whose private address is 127.0.0.1, as IMDS identifies its caller.
 */
import { startAzureSim, type AzureSim } from "@weft/cloud-sim";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AzureMetadataError, readAzureIdentity } from "./azure.js";

const SUB = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
let sim: AzureSim;

beforeEach(async () => {
  sim = await startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB, metadata: { host: "127.0.0.1", port: 0 } });
});
afterEach(async () => {
  await sim.close();
});

describe("azure metadata", () => {
  it("azure metadata - the claim names the caller's VM, subscription, location and zone", async () => {
    sim.store.addInstance({ id: "5d7c0b6e-7a43-4f0b-9c1e-1f2d3c4b5a69", name: "agent-vm", region: "uksouth", zone: "2", network: "vnet", privateIp: "127.0.0.1", tags: {} });
    sim.store.addInstance({ id: "other", name: "other-vm", region: "eastus", network: "vnet", privateIp: "10.9.9.9", tags: {} });
    const got = await readAzureIdentity({ endpoint: sim.metadataUrl! });
    expect(got).toEqual({ provider: "azure", id: "5d7c0b6e-7a43-4f0b-9c1e-1f2d3c4b5a69", account: SUB, region: "uksouth", zone: "2" });
  });

  it("azure metadata - a VM outside any zone has no zone", async () => {
    sim.store.addInstance({ id: "vm-no-zone", name: "nz", region: "westus", network: "vnet", privateIp: "127.0.0.1", tags: {} });
    expect(await readAzureIdentity({ endpoint: `${sim.metadataUrl!}/` })).toEqual({ provider: "azure", id: "vm-no-zone", account: SUB, region: "westus" });
  });

  it("azure metadata - an address that is no VM's is a non-retryable 404", async () => {
    const err = await readAzureIdentity({ endpoint: sim.metadataUrl! }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AzureMetadataError);
    expect([(err as AzureMetadataError).status, (err as AzureMetadataError).retryable]).toEqual([404, false]);
  });

  it("azure metadata - an unreachable service is retryable", async () => {
    const url = sim.metadataUrl!;
    await sim.close();
    const err = await readAzureIdentity({ endpoint: url, timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AzureMetadataError);
    expect((err as AzureMetadataError).retryable).toBe(true);
    sim = await startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB });
  });
});
