import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startGcpSim, type GcpFault, type GcpSim } from "./index.js";

const BEARER = { authorization: "Bearer test-token" };

let sim: GcpSim;

beforeEach(async () => {
  sim = await startGcpSim({ project: "weft-test", pageSize: 2, zones: ["us-central1-a", "us-east1-b"], metadata: { host: "127.0.0.1", port: 0 } });
  sim.store.addNetwork({ id: "9001", name: "prod", region: "us-central1", cidrs: [], subnets: [{ id: "s1", name: "prod-uc1", cidr: "10.10.0.0/20", zone: "us-central1" }] });
  for (const [id, zone, ip] of [
    ["1001", "us-central1-a", "10.10.0.2"],
    ["1002", "us-central1-a", "10.10.0.3"],
    ["1003", "europe-west1-b", "10.20.0.2"],
  ] as const) {
    sim.store.addInstance({ id, name: `vm-${id}`, region: zone.slice(0, -2), zone, network: "prod", subnet: "prod-uc1", privateIp: ip, tags: { env: "test" } });
  }
});

afterEach(async () => {
  await sim.close();
});

async function getJson(path: string, headers: Record<string, string> = BEARER): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${sim.url}${path}`, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

type Listed = Record<string, unknown> & { id: string };

/** Every instance of every page, by zone. */
async function allInstances(): Promise<Record<string, Listed[]>> {
  const out: Record<string, Listed[]> = {};
  let token: string | undefined;
  do {
    const { body } = await getJson(`/compute/v1/projects/weft-test/aggregated/instances${token ? `?pageToken=${token}` : ""}`);
    for (const [scope, list] of Object.entries(body.items as Record<string, { instances?: Listed[] }>)) (out[scope] ??= []).push(...(list.instances ?? []));
    token = body.nextPageToken as string | undefined;
  } while (token);
  return out;
}

describe("gcp sim - compute API", () => {
  it("gcp sim - aggregated instances pages carry every zone, empty ones warned NO_RESULTS_ON_PAGE", async () => {
    const p1 = await getJson("/compute/v1/projects/weft-test/aggregated/instances?maxResults=2");
    expect(p1.status).toBe(200);
    expect(p1.body.kind).toBe("compute#instanceAggregatedList");
    const items = p1.body.items as Record<string, { instances?: { id: string }[]; warning?: { code: string; data: { key: string; value: string }[] } }>;
    expect(Object.keys(items).sort()).toEqual(["zones/europe-west1-b", "zones/us-central1-a", "zones/us-east1-b"]);
    // Sorted by zone then id: page 1 holds 1003 (europe-west1-b) and 1001.
    expect(items["zones/europe-west1-b"]?.instances?.map((i) => i.id)).toEqual(["1003"]);
    expect(items["zones/us-central1-a"]?.instances?.map((i) => i.id)).toEqual(["1001"]);
    expect(items["zones/us-east1-b"]?.instances).toBeUndefined();
    expect(items["zones/us-east1-b"]?.warning?.code).toBe("NO_RESULTS_ON_PAGE");
    expect(items["zones/us-east1-b"]?.warning?.data).toEqual([{ key: "scope", value: "zones/us-east1-b" }]);
    const token = p1.body.nextPageToken as string;
    expect(typeof token).toBe("string");
    const p2 = await getJson(`/compute/v1/projects/weft-test/aggregated/instances?maxResults=2&pageToken=${encodeURIComponent(token)}`);
    const items2 = p2.body.items as Record<string, { instances?: { id: string }[]; warning?: { code: string } }>;
    expect(items2["zones/us-central1-a"]?.instances?.map((i) => i.id)).toEqual(["1002"]);
    expect(items2["zones/europe-west1-b"]?.warning?.code).toBe("NO_RESULTS_ON_PAGE");
    expect(p2.body.nextPageToken).toBeUndefined();
  });

  it("gcp sim - an instance has the discovery document's fields and URLs", async () => {
    sim.store.addInstance({
      id: "2001",
      name: "full",
      region: "us-central1",
      zone: "us-central1-a",
      network: "prod",
      subnet: "prod-uc1",
      privateIp: "10.10.0.9",
      publicIp: "34.0.0.9",
      tags: { team: "net" },
      extra: { machineType: "n2-standard-2", networkTags: "http-server, ssh" },
    });
    const inst = (await allInstances())["zones/us-central1-a"]?.find((i) => i.id === "2001");
    expect(inst).toMatchObject({
      kind: "compute#instance",
      id: "2001",
      name: "full",
      status: "RUNNING",
      zone: "https://www.googleapis.com/compute/v1/projects/weft-test/zones/us-central1-a",
      machineType: "https://www.googleapis.com/compute/v1/projects/weft-test/zones/us-central1-a/machineTypes/n2-standard-2",
      selfLink: "https://www.googleapis.com/compute/v1/projects/weft-test/zones/us-central1-a/instances/full",
      labels: { team: "net" },
      tags: { items: ["http-server", "ssh"] },
      networkInterfaces: [
        {
          network: "https://www.googleapis.com/compute/v1/projects/weft-test/global/networks/prod",
          subnetwork: "https://www.googleapis.com/compute/v1/projects/weft-test/regions/us-central1/subnetworks/prod-uc1",
          networkIP: "10.10.0.9",
          accessConfigs: [{ type: "ONE_TO_ONE_NAT", name: "External NAT", natIP: "34.0.0.9" }],
        },
      ],
    });
    expect(inst?.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-07:00$/);
  });

  it("gcp sim - stopped renders TERMINATED without the ephemeral IP; terminated is no longer listed", async () => {
    sim.store.addInstance({ id: "3001", name: "s", region: "us-east1", zone: "us-east1-b", network: "prod", privateIp: "10.0.0.1", publicIp: "34.1.1.1", tags: {} });
    await sim.admin.stop("3001");
    await sim.admin.terminate("1001");
    const items = await allInstances();
    const s = items["zones/us-east1-b"]?.[0] as { status: string; networkInterfaces: { accessConfigs: Record<string, unknown>[] }[] } | undefined;
    expect(s?.status).toBe("TERMINATED");
    expect(s?.networkInterfaces[0]?.accessConfigs[0]).toEqual({ kind: "compute#accessConfig", type: "ONE_TO_ONE_NAT", name: "External NAT", networkTier: "PREMIUM" });
    expect(items["zones/us-central1-a"]?.map((i) => i.id)).toEqual(["1002"]);
  });

  it("gcp sim - networks list and aggregated subnetworks page", async () => {
    sim.store.addNetwork({ id: "9002", name: "dev", region: "europe-west1", cidrs: [], subnets: [{ id: "d1", name: "dev-ew1", cidr: "10.30.0.0/20", zone: "europe-west1-b" }] });
    sim.store.addNetwork({ id: "9003", name: "mgmt", region: "us-east1", cidrs: [], subnets: [] });
    const n1 = await getJson("/compute/v1/projects/weft-test/global/networks?maxResults=2");
    expect((n1.body.items as { name: string }[]).map((n) => n.name)).toEqual(["dev", "mgmt"]);
    const n2 = await getJson(`/compute/v1/projects/weft-test/global/networks?pageToken=${n1.body.nextPageToken as string}`);
    expect((n2.body.items as { name: string; id: string }[]).map((n) => [n.name, n.id])).toEqual([["prod", "9001"]]);
    const s = await getJson("/compute/v1/projects/weft-test/aggregated/subnetworks");
    const items = s.body.items as Record<string, { subnetworks?: { name: string; ipCidrRange: string; region: string }[]; warning?: { code: string } }>;
    expect(items["regions/europe-west1"]?.subnetworks?.[0]).toMatchObject({ name: "dev-ew1", ipCidrRange: "10.30.0.0/20", region: "https://www.googleapis.com/compute/v1/projects/weft-test/regions/europe-west1" });
    expect(items["regions/us-east1"]?.warning?.code).toBe("NO_RESULTS_ON_PAGE");
  });

  it("gcp sim - faults answer in GCE's error shape and are counted", async () => {
    sim.faults.add({ kind: "throttle", count: 1, operation: "instances.aggregatedList", retryAfterSeconds: 2 });
    sim.faults.add({ kind: "throttle", count: 1, httpStatus: 403 } as GcpFault);
    sim.faults.add({ kind: "server-error", count: 1 });
    sim.faults.add({ kind: "auth", count: 1 });
    const path = "/compute/v1/projects/weft-test/aggregated/instances";
    const r1 = await fetch(`${sim.url}${path}`, { headers: BEARER });
    expect(r1.status).toBe(429);
    expect(r1.headers.get("retry-after")).toBe("2");
    expect(((await r1.json()) as { error: { errors: { reason: string }[] } }).error.errors[0]?.reason).toBe("rateLimitExceeded");
    const r2 = await getJson(path);
    expect([r2.status, (r2.body.error as { errors: { reason: string }[] }).errors[0]?.reason]).toEqual([403, "rateLimitExceeded"]);
    const r3 = await getJson(path);
    expect([r3.status, (r3.body.error as { errors: { reason: string }[] }).errors[0]?.reason]).toEqual([503, "backendError"]);
    const r4 = await getJson(path);
    expect(r4.status).toBe(401);
    expect(r4.body.error).toMatchObject({ code: 401, status: "UNAUTHENTICATED", errors: [{ reason: "authError" }] });
    expect((await getJson(path)).status).toBe(200);
    expect(sim.faults.calls.get("instances.aggregatedList")).toBe(5);
  });

  it("gcp sim - no bearer token is 401; an unknown project is 404; a bad page token is 400", async () => {
    expect((await getJson("/compute/v1/projects/weft-test/aggregated/instances", {})).status).toBe(401);
    expect((await getJson("/compute/v1/projects/other/aggregated/instances")).status).toBe(404);
    expect((await getJson("/compute/v1/projects/weft-test/global/networks?pageToken=zzz")).status).toBe(400);
  });

  it("gcp sim - unreachable zones: named with returnPartialSuccess, 503 without", async () => {
    const res = await fetch(`${sim.url}/_sim/gcp/unreachable`, { method: "PUT", body: JSON.stringify({ scopes: ["zones/europe-west1-b"] }) });
    expect(res.status).toBe(200);
    const ok = await getJson("/compute/v1/projects/weft-test/aggregated/instances?returnPartialSuccess=true");
    expect(ok.body.unreachables).toEqual(["zones/europe-west1-b"]);
    expect(Object.keys(ok.body.items as object)).not.toContain("zones/europe-west1-b");
    expect((await getJson("/compute/v1/projects/weft-test/aggregated/instances")).status).toBe(503);
  });
});

describe("gcp sim - metadata server", () => {
  it("gcp sim - metadata answers for the caller's address, with Metadata-Flavor", async () => {
    sim.store.addInstance({ id: "4242", name: "me", region: "us-central1", zone: "us-central1-b", network: "prod", privateIp: "127.0.0.1", tags: {} });
    const ask = (p: string) => fetch(`${sim.metadataUrl}/computeMetadata/v1/${p}`, { headers: { "Metadata-Flavor": "Google" } });
    const id = await ask("instance/id");
    expect([id.status, id.headers.get("metadata-flavor"), await id.text()]).toEqual([200, "Google", "4242"]);
    expect(await (await ask("instance/zone")).text()).toBe(`projects/${sim.projectNumber}/zones/us-central1-b`);
    expect(await (await ask("instance/name")).text()).toBe("me");
    expect(await (await ask("project/project-id")).text()).toBe("weft-test");
    expect((await ask("instance/nothing")).status).toBe(404);
  });

  it("gcp sim - metadata without the header is 403", async () => {
    sim.store.addInstance({ id: "4242", name: "me", region: "us-central1", zone: "us-central1-b", network: "prod", privateIp: "127.0.0.1", tags: {} });
    const res = await fetch(`${sim.metadataUrl}/computeMetadata/v1/instance/id`);
    expect(res.status).toBe(403);
  });

  it("gcp sim - metadata for an unknown caller is 404", async () => {
    const res = await fetch(`${sim.metadataUrl}/computeMetadata/v1/instance/id`, { headers: { "Metadata-Flavor": "Google" } });
    expect(res.status).toBe(404);
  });
});
