import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAwsSim, type AwsSim } from "./index.js";

let sim: AwsSim;

beforeAll(async () => {
  sim = await startAwsSim({ account: "123456789012", metadata: { host: "127.0.0.1", port: 0 } });
  sim.store.addInstance({
    id: "i-0123456789abcdef0",
    name: "me",
    region: "eu-west-1",
    zone: "eu-west-1b",
    network: "vpc-1",
    privateIp: "127.0.0.1",
    tags: {},
    launchedAt: "2025-03-01T10:20:30.000Z",
    extra: { instanceType: "m6i.large", imageId: "ami-0abcdef1234567890", architecture: "x86_64" },
  });
});
afterAll(async () => {
  await sim.close();
});

const token = async (ttl = "60") => fetch(`${sim.metadataUrl}/latest/api/token`, { method: "PUT", headers: { "x-aws-ec2-metadata-token-ttl-seconds": ttl } });

describe("aws imds", () => {
  it("aws imds - token then identity document for the caller's address", async () => {
    const t = await token();
    expect(t.status).toBe(200);
    expect(t.headers.get("x-aws-ec2-metadata-token-ttl-seconds")).toBe("60");
    const res = await fetch(`${sim.metadataUrl}/latest/dynamic/instance-identity/document`, { headers: { "x-aws-ec2-metadata-token": await t.text() } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      accountId: "123456789012",
      architecture: "x86_64",
      availabilityZone: "eu-west-1b",
      billingProducts: null,
      devpayProductCodes: null,
      marketplaceProductCodes: null,
      imageId: "ami-0abcdef1234567890",
      instanceId: "i-0123456789abcdef0",
      instanceType: "m6i.large",
      kernelId: null,
      pendingTime: "2025-03-01T10:20:30Z",
      privateIp: "127.0.0.1",
      ramdiskId: null,
      region: "eu-west-1",
      version: "2017-09-30",
    });
    const id = await fetch(`${sim.metadataUrl}/latest/meta-data/instance-id`, { headers: { "x-aws-ec2-metadata-token": await (await token()).text() } });
    expect(await id.text()).toBe("i-0123456789abcdef0");
  });

  it("aws imds - no token, a bad token or a bad TTL is refused", async () => {
    expect((await fetch(`${sim.metadataUrl}/latest/dynamic/instance-identity/document`)).status).toBe(401);
    expect((await fetch(`${sim.metadataUrl}/latest/meta-data/instance-id`, { headers: { "x-aws-ec2-metadata-token": "forged" } })).status).toBe(401);
    expect((await token("0")).status).toBe(400);
    expect((await token("21601")).status).toBe(400);
    expect((await fetch(`${sim.metadataUrl}/latest/api/token`, { method: "PUT" })).status).toBe(400);
  });

  it("aws imds - an address that is no instance gets 404", async () => {
    sim.store.remove("i-0123456789abcdef0");
    try {
      const t = await (await token()).text();
      expect((await fetch(`${sim.metadataUrl}/latest/dynamic/instance-identity/document`, { headers: { "x-aws-ec2-metadata-token": t } })).status).toBe(404);
    } finally {
      sim.store.addInstance({ id: "i-0123456789abcdef0", name: "me", region: "eu-west-1", network: "vpc-1", privateIp: "127.0.0.1", tags: {} });
    }
  });
});
