import { startGcpSim, type GcpFault, type GcpSim } from "@weft/cloud-sim";
import { OAuth2Client } from "google-auth-library";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InventoryAuthError, InventoryTransientError } from "../errors.js";
import { InventorySnapshot } from "../model.js";
import { classifyGcpError } from "./classify.js";
import { endpointOptions, GcpInventory, type GcpInventoryOptions } from "./inventory.js";
import { gceState } from "./normalise.js";

const PROJECT = "weft-gcp";

let sim: GcpSim;
let adapters: GcpInventory[];
let delays: number[];

function token(): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: "test-token", expiry_date: Date.now() + 3_600_000 });
  return auth;
}

function inventory(o: Partial<GcpInventoryOptions> = {}): GcpInventory {
  const inv = new GcpInventory({
    project: PROJECT,
    apiEndpoint: sim.url,
    authClient: token(),
    pageSize: 3,
    retry: { attempts: 4, sleep: async (ms) => void delays.push(ms) },
    ...o,
  });
  adapters.push(inv);
  return inv;
}

const calls = (op: string) => sim.faults.calls.get(op) ?? 0;

beforeEach(async () => {
  delays = [];
  adapters = [];
  // The server caps pages at 3 whatever the client asks: 8 instances make 3 pages.
  sim = await startGcpSim({ project: PROJECT, pageSize: 3, zones: ["us-central1-a", "us-central1-b", "europe-west1-b", "asia-east1-a"] });
  sim.store.addNetwork({
    id: "7001",
    name: "prod",
    region: "us-central1",
    cidrs: [],
    subnets: [
      { id: "a", name: "prod-uc1", cidr: "10.10.0.0/20", zone: "us-central1" },
      { id: "b", name: "prod-ew1", cidr: "10.20.0.0/20", zone: "europe-west1" },
    ],
  });
  sim.store.addNetwork({ id: "7002", name: "dev", region: "us-central1", cidrs: [], subnets: [{ id: "c", name: "dev-uc1", cidr: "172.16.0.0/24", zone: "us-central1" }] });
  const zones = ["us-central1-a", "us-central1-a", "us-central1-a", "us-central1-b", "us-central1-b", "europe-west1-b", "europe-west1-b", "europe-west1-b"];
  zones.forEach((zone, n) => {
    const eu = zone.startsWith("europe");
    sim.store.addInstance({
      id: String(5_000_000_000_000_000_000n + BigInt(n)),
      name: `vm-${n}`,
      region: zone.slice(0, -2),
      zone,
      network: "prod",
      subnet: eu ? "prod-ew1" : "prod-uc1",
      privateIp: `10.${eu ? 20 : 10}.0.${n + 2}`,
      tags: { env: "test" },
    });
  });
});

afterEach(async () => {
  await Promise.all(adapters.map((a) => a.close()));
  await sim.close();
});

describe("gcp inventory - listing", () => {
  it("gcp inventory - follows aggregated pages across zones, skipping NO_RESULTS_ON_PAGE scopes", async () => {
    const snap = await inventory().fetch();
    expect(InventorySnapshot.parse(snap)).toEqual(snap);
    expect(snap.complete).toBe(true);
    expect(snap.issues).toEqual([]);
    expect(snap.instances.map((i) => i.name).sort()).toEqual(["vm-0", "vm-1", "vm-2", "vm-3", "vm-4", "vm-5", "vm-6", "vm-7"]);
    // 8 instances at 3 a page: 3 pages; every page also lists asia-east1-a with a warning only.
    expect(calls("instances.aggregatedList")).toBe(3);
    expect(new Set(snap.instances.map((i) => i.zone))).toEqual(new Set(["us-central1-a", "us-central1-b", "europe-west1-b"]));
  });

  it("gcp inventory - maps every field of one instance", async () => {
    sim.store.addInstance({
      id: "8123456789012345678",
      name: "edge-1",
      region: "europe-west1",
      zone: "europe-west1-b",
      network: "prod",
      subnet: "prod-ew1",
      privateIp: "10.20.0.50",
      publicIp: "35.205.1.2",
      tags: { role: "gateway", "weft-site": "eu" },
      extra: { machineType: "n2-standard-4", networkTags: "weft,ssh" },
    });
    const snap = await inventory().fetch();
    const got = snap.instances.find((i) => i.id === "8123456789012345678");
    expect(got).toEqual({
      provider: "gcp",
      account: PROJECT,
      region: "europe-west1",
      zone: "europe-west1-b",
      network: "prod",
      subnet: "prod-ew1",
      id: "8123456789012345678",
      name: "edge-1",
      privateIps: ["10.20.0.50"],
      publicIps: ["35.205.1.2"],
      tags: { role: "gateway", "weft-site": "eu" },
      state: "running",
    });
  });

  it("gcp inventory - networks carry their subnets' ranges", async () => {
    sim.store.addNetwork({ id: "7003", name: "empty", region: "us-central1", cidrs: [], subnets: [] });
    sim.store.addNetwork({ id: "7004", name: "more", region: "us-central1", cidrs: [], subnets: [{ id: "m", name: "more-1", cidr: "192.168.0.0/24", zone: "us-central1" }] });
    const snap = await inventory({ pageSize: 2 }).fetch();
    expect(snap.complete).toBe(true);
    const byId = Object.fromEntries(snap.networks.map((n) => [n.id, n]));
    expect(Object.keys(byId).sort()).toEqual(["dev", "empty", "more", "prod"]);
    expect(byId.prod).toEqual({
      provider: "gcp",
      account: PROJECT,
      id: "prod",
      name: "prod",
      cidrs: ["10.20.0.0/20", "10.10.0.0/20"],
      subnets: [
        { id: "regions/europe-west1/subnetworks/prod-ew1", name: "prod-ew1", cidr: "10.20.0.0/20" },
        { id: "regions/us-central1/subnetworks/prod-uc1", name: "prod-uc1", cidr: "10.10.0.0/20" },
      ],
    });
    expect(byId.empty?.cidrs).toEqual([]);
    expect(calls("networks.list")).toBe(2);
  });

  it("gcp inventory - stop, delete and relabel are seen on the next fetch", async () => {
    const inv = inventory();
    const before = await inv.fetch();
    const id0 = before.instances.find((i) => i.name === "vm-0")!.id;
    const id1 = before.instances.find((i) => i.name === "vm-1")!.id;
    const id2 = before.instances.find((i) => i.name === "vm-2")!.id;
    await sim.admin.stop(id0);
    await sim.admin.terminate(id1);
    await sim.admin.retag(id2, { env: null, role: "db" });
    const after = await inv.fetch();
    expect(after.complete).toBe(true);
    const byId = new Map(after.instances.map((i) => [i.id, i]));
    expect(byId.get(id0)?.state).toBe("stopped");
    expect(byId.has(id1)).toBe(false);
    expect(byId.get(id2)?.tags).toEqual({ role: "db" });
    expect(after.instances).toHaveLength(7);
  });
});

describe("gcp inventory - errors", () => {
  it("gcp inventory - 429 rateLimitExceeded is retried, honouring Retry-After, then succeeds", async () => {
    sim.faults.add({ kind: "throttle", count: 2, operation: "instances.aggregatedList", retryAfterSeconds: 1 });
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(true);
    expect(snap.instances).toHaveLength(8);
    expect(calls("instances.aggregatedList")).toBe(2 + 3);
    expect(delays).toEqual([1000, 1000]);
  });

  it("gcp inventory - 403 rateLimitExceeded is throttling, retried", async () => {
    sim.faults.add({ kind: "throttle", count: 1, operation: "networks.list", httpStatus: 403 } as GcpFault);
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(true);
    expect(calls("networks.list")).toBe(2);
  });

  it("gcp inventory - 503 and 500 are retried, the SDK itself not retrying", async () => {
    sim.faults.add({ kind: "server-error", count: 1, operation: "instances.aggregatedList" });
    sim.faults.add({ kind: "server-error", count: 1, operation: "instances.aggregatedList", httpStatus: 500 } as GcpFault);
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(true);
    expect(calls("instances.aggregatedList")).toBe(2 + 3);
    expect(delays).toHaveLength(2);
  });

  it("gcp inventory - a page slower than timeoutMs is cancelled and retried", async () => {
    sim.faults.add({ kind: "slow", count: 1, delayMs: 3000, operation: "networks.list" });
    const started = Date.now();
    const snap = await inventory({ timeoutMs: 300 }).fetch();
    expect(snap.complete).toBe(true);
    expect(calls("networks.list")).toBe(2);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it("gcp inventory - an aborted fetch rejects instead of returning a snapshot", async () => {
    sim.faults.add({ kind: "slow", count: 1, delayMs: 3000, operation: "instances.aggregatedList" });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error("shutting down")), 100);
    await expect(inventory().fetch(ctl.signal)).rejects.toThrow(/shutting down/);
  });

  it("gcp inventory - 401 is InventoryAuthError after one call", async () => {
    sim.faults.add({ kind: "auth", count: -1 });
    const err = await inventory().fetch().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InventoryAuthError);
    expect((err as InventoryAuthError).message).toMatch(/^gce instances\.aggregatedList: credentials refused 401 \(authError\)/);
    expect(calls("instances.aggregatedList")).toBe(1);
    expect(delays).toEqual([]);
  });

  it("gcp inventory - 403 without a rate reason is InventoryAuthError", async () => {
    sim.faults.add({ kind: "auth", count: -1, httpStatus: 403 } as GcpFault);
    await expect(inventory().fetch()).rejects.toBeInstanceOf(InventoryAuthError);
    expect(calls("instances.aggregatedList")).toBe(1);
  });

  it("gcp inventory - a resource type failing throughout is an issue and the snapshot incomplete", async () => {
    sim.faults.add({ kind: "server-error", count: -1, operation: "subnetworks.aggregatedList" });
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(false);
    expect(snap.instances).toHaveLength(8);
    expect(snap.networks.map((n) => n.id).sort()).toEqual(["dev", "prod"]);
    expect(snap.issues).toEqual([{ scope: "subnetworks", code: "server_error", message: expect.stringMatching(/^gce subnetworks\.aggregatedList: server error 503 \(backendError\)/) as unknown as string }]);
    expect(calls("subnetworks.aggregatedList")).toBe(4);
  });

  it("gcp inventory - an unreachable zone is an issue; the rest is listed", async () => {
    sim.unreachable.add("zones/europe-west1-b");
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(false);
    expect(snap.instances).toHaveLength(5);
    expect(snap.issues).toContainEqual({ scope: "instances zones/europe-west1-b", code: "unreachable", message: "gce instances.aggregatedList: zones/europe-west1-b unreachable" });
  });

  it("gcp inventory - an unreachable API is a transient issue per resource type", async () => {
    const inv = inventory({ retry: { attempts: 2, sleep: async () => {} } });
    await sim.close();
    const snap = await inv.fetch();
    expect(snap.complete).toBe(false);
    expect(snap.issues.map((i) => [i.scope, i.code])).toEqual([
      ["instances", "network"],
      ["networks", "network"],
      ["subnetworks", "network"],
    ]);
    sim = await startGcpSim({ project: PROJECT });
  });

  it("gcp inventory - missing default credentials are InventoryAuthError", async () => {
    const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = "/nonexistent/weft-test-credentials.json";
    try {
      const inv = new GcpInventory({ project: PROJECT, apiEndpoint: sim.url });
      adapters.push(inv);
      await expect(inv.fetch()).rejects.toBeInstanceOf(InventoryAuthError);
      expect(calls("instances.aggregatedList")).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
    }
  });
});

describe("gcp inventory - pieces", () => {
  it("gcp inventory - GCE statuses map to the model's states", () => {
    const got = ["PROVISIONING", "STAGING", "RUNNING", "STOPPING", "SUSPENDING", "STOPPED", "SUSPENDED", "TERMINATED", "REPAIRING", undefined].map(gceState);
    expect(got).toEqual(["pending", "pending", "running", "stopping", "stopping", "stopped", "stopped", "stopped", "unknown", "unknown"]);
  });

  it("gcp inventory - classifies gRPC-coded GoogleErrors and OAuth refusals", () => {
    const grpc = (code: number) => Object.assign(new Error("x"), { code });
    expect(classifyGcpError(grpc(8), "op")).toBeInstanceOf(InventoryTransientError);
    expect(classifyGcpError(grpc(14), "op")).toBeInstanceOf(InventoryTransientError);
    expect(classifyGcpError(grpc(16), "op")).toBeInstanceOf(InventoryAuthError);
    expect(classifyGcpError(grpc(7), "op")).toBeInstanceOf(InventoryAuthError);
    const oauth = Object.assign(new Error(JSON.stringify({ error: "invalid_grant", error_description: "Token has been expired or revoked." })), { status: 400 });
    expect(classifyGcpError(oauth, "op")).toBeInstanceOf(InventoryAuthError);
    const notFound = classifyGcpError(Object.assign(new Error("{}"), { status: 404 }), "op");
    expect([notFound.code, notFound.retryable]).toEqual(["not_found", false]);
  });

  it("gcp inventory - endpoint URLs become the client's host, port and protocol", () => {
    expect(endpointOptions("http://127.0.0.1:8080")).toEqual({ apiEndpoint: "127.0.0.1", port: 8080, protocol: "http" });
    expect(endpointOptions("https://compute.example.test")).toEqual({ apiEndpoint: "compute.example.test", port: 443, protocol: "https" });
    expect(endpointOptions("compute.googleapis.com")).toEqual({ apiEndpoint: "compute.googleapis.com" });
  });
});
