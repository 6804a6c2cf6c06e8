/**
 * The Azure simulator on the wire: ARM list bodies, absolute nextLinks on its own host, ARM error
 * shapes and headers for each fault, the admin interface over HTTPS, and IMDS identifying the
 * caller by its source address.
 */
import { request } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { caFetch, startAzureSim, type AzureSim } from "./index.js";

/** ARM bodies, read loosely by the assertions below. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Arm = any;

const SUB = "11111111-2222-4333-8444-555555555555";
const API = "api-version=2025-05-01";
let sim: AzureSim;
let get: (path: string, headers?: Record<string, string>) => Promise<{ status: number; headers: Headers; body: Record<string, unknown> }>;

beforeEach(async () => {
  sim = await startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB, pageSize: 2, metadata: { host: "127.0.0.1", port: 0 } });
  const f = caFetch(sim.caPem);
  get = async (path, headers = { authorization: "Bearer t" }) => {
    const res = await f(`${sim.url}${path}`, { headers });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  sim.store.addNetwork({ id: "vnet1", name: "vnet1", region: "eastus", cidrs: ["10.0.0.0/16"], subnets: [{ id: "default", cidr: "10.0.1.0/24" }] });
  for (let n = 0; n < 5; n++) {
    sim.store.addInstance({ id: `vm-id-${n}`, name: `vm${n}`, region: "eastus", network: "vnet1", privateIp: `10.0.1.${n + 4}`, ...(n === 0 ? { publicIp: "20.1.2.3" } : {}), tags: { n: String(n) } });
  }
});
afterEach(async () => {
  await sim.close();
});

/** A plain-HTTP GET to the metadata listener (fetch cannot set a source address; this uses 127.0.0.1). */
function imds(path: string, headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${sim.metadataUrl}${path}`, { headers }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("azure sim", () => {
  it("azure sim - pages carry an absolute nextLink on the simulator's host", async () => {
    const names: string[] = [];
    let path: string | undefined = `/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${API}`;
    let pages = 0;
    while (path) {
      const { status, body } = await get(path);
      expect(status).toBe(200);
      names.push(...(body.value as { name: string }[]).map((v) => v.name));
      const next = body.nextLink as string | undefined;
      if (next) expect(next.startsWith(`${sim.url}/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?`), next).toBe(true);
      path = next?.slice(sim.url.length);
      pages++;
    }
    expect(pages).toBe(3);
    expect(names).toEqual(["vm0", "vm1", "vm2", "vm3", "vm4"]);
  });

  it("azure sim - a VM, its status view, NIC, public IP and VNet look like ARM's", async () => {
    const vm = ((await get(`/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${API}`)).body.value as Arm[])[0]!;
    const vmId = `/subscriptions/${SUB}/resourceGroups/weft-sim/providers/Microsoft.Compute/virtualMachines/vm0`;
    const nicId = `/subscriptions/${SUB}/resourceGroups/weft-sim/providers/Microsoft.Network/networkInterfaces/vm0-nic`;
    expect(vm).toMatchObject({ id: vmId, name: "vm0", type: "Microsoft.Compute/virtualMachines", location: "eastus", tags: { n: "0" } });
    expect(vm.properties).toMatchObject({ vmId: "vm-id-0", provisioningState: "Succeeded", networkProfile: { networkInterfaces: [{ id: nicId }] } });
    expect(vm.properties.instanceView, "the model view has no instance view").toBeUndefined();

    sim.store.setState("vm-id-0", "stopped");
    const status = ((await get(`/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${API}&statusOnly=true`)).body.value as Arm[])[0]!;
    expect(status.tags, "status view has no tags").toBeUndefined();
    expect(status.properties.instanceView.statuses.map((s: { code: string }) => s.code)).toEqual(["ProvisioningState/succeeded", "PowerState/stopped"]);

    const nic = ((await get(`/subscriptions/${SUB}/providers/Microsoft.Network/networkInterfaces?${API}`)).body.value as Arm[])[0]!;
    expect(nic.id).toBe(nicId);
    expect(nic.properties.ipConfigurations[0].properties).toMatchObject({
      privateIPAddress: "10.0.1.4",
      subnet: { id: `/subscriptions/${SUB}/resourceGroups/weft-sim/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/default` },
      publicIPAddress: { id: `/subscriptions/${SUB}/resourceGroups/weft-sim/providers/Microsoft.Network/publicIPAddresses/vm0-ip` },
    });
    const pips = (await get(`/subscriptions/${SUB}/providers/Microsoft.Network/publicIPAddresses?${API}`)).body.value as Arm[];
    expect(pips.map((p) => p.properties.ipAddress), "only VMs with a public IP have one").toEqual(["20.1.2.3"]);
    const vnets = (await get(`/subscriptions/${SUB}/providers/Microsoft.Network/virtualNetworks?${API}`)).body.value as Arm[];
    expect(vnets[0]!.properties.addressSpace.addressPrefixes).toEqual(["10.0.0.0/16"]);
    expect(vnets[0]!.properties.subnets[0]).toMatchObject({ name: "default", properties: { addressPrefix: "10.0.1.0/24" } });
  });

  it("azure sim - faults answer in ARM's error shape with its headers", async () => {
    const path = `/subscriptions/${SUB}/providers/Microsoft.Network/virtualNetworks?${API}`;
    sim.faults.add({ kind: "throttle", count: 1, retryAfterSeconds: 3 });
    const t = await get(path);
    expect([t.status, t.headers.get("retry-after"), (t.body.error as { code: string }).code]).toEqual([429, "3", "SubscriptionRequestsThrottled"]);
    sim.faults.add({ kind: "auth", count: 1 });
    const a = await get(path);
    expect([a.status, (a.body.error as { code: string }).code]).toEqual([401, "InvalidAuthenticationToken"]);
    sim.faults.add({ kind: "server-error", count: 1 });
    expect((await get(path)).status).toBe(500);
    sim.faults.add({ kind: "server-error", count: 1, retryAfterSeconds: 2 });
    const u = await get(path);
    expect([u.status, u.headers.get("retry-after")]).toEqual([503, "2"]);
    expect((await get(path)).status, "faults used up").toBe(200);
  });

  it("azure sim - refuses a request without a bearer token, api-version or the right subscription", async () => {
    const path = `/subscriptions/${SUB}/providers/Microsoft.Network/virtualNetworks`;
    expect((await get(`${path}?${API}`, {})).status).toBe(401);
    expect(((await get(path)).body.error as { code: string }).code).toBe("MissingApiVersionParameter");
    expect((await get(`/subscriptions/other/providers/Microsoft.Network/virtualNetworks?${API}`)).status).toBe(404);
  });

  it("azure sim - the admin interface works over the ARM listener", async () => {
    await sim.admin.stop("vm-id-1");
    await sim.admin.retag("vm-id-2", { role: "db" });
    expect(sim.store.instance("vm-id-1").state).toBe("stopped");
    expect(sim.store.instance("vm-id-2").tags).toEqual({ n: "2", role: "db" });
    await get(`/subscriptions/${SUB}/providers/Microsoft.Network/virtualNetworks?${API}`);
    expect(await sim.admin.calls()).toEqual({ "virtualNetworks.listAll": 1 });
  });

  it("azure sim - IMDS answers the caller's own instance and refuses a request without Metadata: true", async () => {
    expect((await imds("/metadata/instance?api-version=2021-02-01", {})).status).toBe(400);
    expect((await imds("/metadata/instance?api-version=2021-02-01", { Metadata: "true" })).status, "no instance at 127.0.0.1 yet").toBe(404);
    sim.store.addInstance({ id: "local-vm-id", name: "local", region: "eastus", zone: "3", network: "vnet1", privateIp: "127.0.0.1", tags: { a: "b", c: "d" } });
    const { status, body } = await imds("/metadata/instance?api-version=2021-02-01", { Metadata: "true" });
    expect(status).toBe(200);
    expect(body.compute).toMatchObject({ vmId: "local-vm-id", name: "local", location: "eastus", zone: "3", subscriptionId: SUB, resourceGroupName: "weft-sim", tags: "a:b;c:d", tagsList: [{ name: "a", value: "b" }, { name: "c", value: "d" }] });
    expect(body.network).toMatchObject({ interface: [{ ipv4: { ipAddress: [{ privateIpAddress: "127.0.0.1", publicIpAddress: "" }], subnet: [{ address: "10.0.1.0", prefix: "24" }] } }] });
    expect((await imds("/metadata/instance?api-version=2021-02-01", { Metadata: "true", "X-Forwarded-For": "1.2.3.4" })).status).toBe(400);
    expect((await imds("/metadata/instance", { Metadata: "true" })).status, "api-version required").toBe(400);
  });
});
