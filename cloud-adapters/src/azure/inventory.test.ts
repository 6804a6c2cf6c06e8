/**
 * AzureInventory against the ARM simulator on 127.0.0.1 over HTTPS (its test CA trusted
 * in-process): the unmodified ComputeManagementClient and NetworkManagementClient, real paging,
 * real faults on the wire.
 */
import { CredentialUnavailableError } from "@azure/identity";
import type { TokenCredential } from "@azure/core-auth";
import { startAzureSim, type AzureSim } from "@weft/cloud-sim";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InventoryAuthError, InventoryTransientError } from "../errors.js";
import type { Instance } from "../model.js";
import { classifyAzureError } from "./classify.js";
import { AzureInventory, type AzureInventoryOptions } from "./inventory.js";

const SUB = "6f1c1e3a-0000-4000-8000-00000000a2e0";
const RG = "weft-test";
const credential: TokenCredential = { getToken: async () => ({ token: "t", expiresOnTimestamp: Date.now() + 3_600_000 }) };
const vnetId = (name: string) => `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/virtualNetworks/${name}`;

let sim: AzureSim;
let sleeps: number[];

function inventory(o: Partial<AzureInventoryOptions> = {}): AzureInventory {
  return new AzureInventory({
    subscriptionId: SUB,
    endpoint: sim.url,
    caPem: sim.caPem,
    credential,
    retry: { attempts: 4, sleep: async (ms) => void sleeps.push(ms) },
    ...o,
  });
}

function seed(count: number): void {
  sim.store.addNetwork({ id: "hub", name: "hub", region: "westeurope", cidrs: ["10.20.0.0/16", "10.21.0.0/16"], subnets: [{ id: "app", cidr: "10.20.1.0/24" }, { id: "db", name: "db", cidr: "10.21.2.0/24" }] });
  for (let n = 0; n < count; n++) {
    sim.store.addInstance({
      id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
      name: `vm-${n}`,
      region: "westeurope",
      zone: String((n % 3) + 1),
      network: "hub",
      subnet: "app",
      privateIp: `10.20.1.${n + 4}`,
      tags: { index: String(n) },
    });
  }
}

beforeEach(async () => {
  sleeps = [];
  sim = await startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB, resourceGroup: RG, pageSize: 2 });
});
afterEach(async () => {
  await sim.close();
});

describe("azure inventory", () => {
  it("azure inventory - follows nextLink across every page of VMs and NICs", async () => {
    seed(7);
    const snap = await inventory().fetch();
    expect(snap.complete, `issues: ${JSON.stringify(snap.issues)}`).toBe(true);
    expect(snap.instances.map((i) => i.name).sort(), "instances from 4 pages of 2").toEqual(["vm-0", "vm-1", "vm-2", "vm-3", "vm-4", "vm-5", "vm-6"]);
    expect(snap.instances.every((i) => i.privateIps.length === 1), "every VM joined to its NIC").toBe(true);
    const calls = Object.fromEntries(sim.faults.calls);
    expect(calls["virtualMachines.listAll"], "VM list pages").toBe(4);
    expect(calls["virtualMachines.listAll?statusOnly"], "VM status pages").toBe(4);
    expect(calls["networkInterfaces.listAll"], "NIC pages").toBe(4);
  });

  it("azure inventory - maps every field of a fully specified VM", async () => {
    seed(0);
    sim.store.addInstance({
      id: "3c0ffee0-1111-4222-8333-444455556666",
      name: "edge-1",
      region: "northeurope",
      zone: "2",
      network: "hub",
      subnet: "db",
      privateIp: "10.21.2.10",
      publicIp: "20.50.60.70",
      tags: { "weft.site": "dublin", role: "edge" },
      extra: { resourceGroup: "edge-rg", vmSize: "Standard_D2s_v5" },
    });
    const snap = await inventory().fetch();
    const got = snap.instances.find((i) => i.name === "edge-1");
    const want: Instance = {
      provider: "azure",
      account: SUB,
      region: "northeurope",
      zone: "2",
      network: vnetId("hub"),
      subnet: `${vnetId("hub")}/subnets/db`,
      id: "3c0ffee0-1111-4222-8333-444455556666",
      name: "edge-1",
      privateIps: ["10.21.2.10"],
      publicIps: ["20.50.60.70"],
      tags: { "weft.site": "dublin", role: "edge" },
      state: "running",
    };
    expect(got, "edge-1 present").toBeDefined();
    for (const k of Object.keys(want) as (keyof Instance)[]) expect(got?.[k], `field ${k}`).toEqual(want[k]);
    expect(Object.keys(got ?? {}).sort(), "no extra fields").toEqual(Object.keys(want).sort());
    expect(snap.networks, "VNet with address space and subnets").toEqual([
      {
        provider: "azure",
        account: SUB,
        region: "westeurope",
        id: vnetId("hub"),
        name: "hub",
        cidrs: ["10.20.0.0/16", "10.21.0.0/16"],
        subnets: [
          { id: `${vnetId("hub")}/subnets/app`, name: "app", cidr: "10.20.1.0/24" },
          { id: `${vnetId("hub")}/subnets/db`, name: "db", cidr: "10.21.2.0/24" },
        ],
      },
    ]);
  });

  it("azure inventory - 429 is retried after the server's Retry-After", async () => {
    seed(3);
    sim.faults.add({ kind: "throttle", count: 2, operation: "virtualMachines.listAll", retryAfterSeconds: 7 });
    const snap = await inventory().fetch();
    expect(snap.complete, JSON.stringify(snap.issues)).toBe(true);
    expect(snap.instances).toHaveLength(3);
    expect(sleeps, "waits taken from Retry-After: 7").toEqual([7000, 7000]);
    expect(sim.faults.calls.get("virtualMachines.listAll"), "2 throttled + 2 pages").toBe(4);
  });

  it("azure inventory - 500 and 503 are retried", async () => {
    seed(3);
    sim.faults.add({ kind: "server-error", count: 1, operation: "networkInterfaces.listAll" });
    sim.faults.add({ kind: "server-error", count: 1, operation: "publicIPAddresses.listAll", retryAfterSeconds: 0 });
    const snap = await inventory().fetch();
    expect(snap.complete, JSON.stringify(snap.issues)).toBe(true);
    expect(snap.instances.every((i) => i.privateIps.length === 1)).toBe(true);
    expect(sim.faults.calls.get("networkInterfaces.listAll"), "1 failed + 2 pages").toBe(3);
    expect(sim.faults.calls.get("publicIPAddresses.listAll"), "1 failed + 1 page").toBe(2);
    expect(sleeps, "one backoff each").toHaveLength(2);
  });

  it("azure inventory - 401 throws InventoryAuthError after one request", async () => {
    seed(3);
    sim.faults.add({ kind: "auth", count: -1 });
    const err = await inventory().fetch().catch((e: unknown) => e);
    expect(err, String(err)).toBeInstanceOf(InventoryAuthError);
    expect((err as Error).message).toContain("InvalidAuthenticationToken");
    const total = [...sim.faults.calls.values()].reduce((a, b) => a + b, 0);
    expect(total, `calls: ${JSON.stringify(Object.fromEntries(sim.faults.calls))}`).toBe(1);
    expect(sleeps, "no retry").toEqual([]);
  });

  it("azure inventory - an unavailable credential chain is InventoryAuthError", async () => {
    const failing: TokenCredential = {
      getToken: async () => {
        throw new CredentialUnavailableError("DefaultAzureCredential: no credential in the chain");
      },
    };
    const err = await inventory({ credential: failing }).fetch().catch((e: unknown) => e);
    expect(err, String(err)).toBeInstanceOf(InventoryAuthError);
    expect(sim.faults.calls.size, "nothing reached ARM").toBe(0);
  });

  it("azure inventory - one list failing for good is an issue; the others are returned", async () => {
    seed(3);
    sim.faults.add({ kind: "server-error", count: -1, operation: "virtualNetworks.listAll" });
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(false);
    expect(snap.issues, "one issue for the VNet list").toEqual([expect.objectContaining({ scope: "virtualNetworks.listAll", code: "http_500" })]);
    expect(snap.networks).toEqual([]);
    expect(snap.instances.map((i) => [i.name, i.state, i.network]), "instances still joined").toEqual([
      ["vm-0", "running", vnetId("hub")],
      ["vm-1", "running", vnetId("hub")],
      ["vm-2", "running", vnetId("hub")],
    ]);
    expect(sim.faults.calls.get("virtualNetworks.listAll"), "attempts used up").toBe(4);
  });

  it("azure inventory - a failed status pass leaves states unknown and the snapshot incomplete", async () => {
    seed(2);
    sim.faults.add({ kind: "throttle", count: -1, operation: "virtualMachines.listAll?statusOnly", retryAfterSeconds: 0 });
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(false);
    expect(snap.issues.map((i) => i.scope)).toEqual(["virtualMachines.listAll?statusOnly"]);
    expect(snap.instances.map((i) => i.state)).toEqual(["unknown", "unknown"]);
  });

  it("azure inventory - stop, terminate, remove and retag show on the next fetch", async () => {
    seed(4);
    const inv = inventory();
    const before = await inv.fetch();
    expect(before.instances.map((i) => i.state)).toEqual(["running", "running", "running", "running"]);
    const [a, b, c, d] = before.instances.map((i) => i.id);
    await sim.admin.stop(a!);
    await sim.admin.terminate(b!);
    await sim.admin.remove(c!);
    await sim.admin.retag(d!, { index: null, "weft.role": "gateway" });
    sim.store.addInstance({ id: "99999999-0000-4000-8000-000000000000", name: "vm-new", region: "westeurope", network: "hub", privateIp: "10.20.1.99", tags: {}, extra: { powerState: "deallocated" }, state: "stopped" });
    const after = await inv.fetch();
    const byId = new Map(after.instances.map((i) => [i.id, i]));
    expect(byId.get(a!)?.state, "stopped").toBe("stopped");
    expect(byId.get(b!)?.state, "terminated (being deleted)").toBe("terminated");
    expect(byId.has(c!), "removed VM is gone").toBe(false);
    expect(byId.get(d!)?.tags, "retagged").toEqual({ "weft.role": "gateway" });
    expect(byId.get("99999999-0000-4000-8000-000000000000")?.state, "deallocated is stopped").toBe("stopped");
    expect(byId.get("99999999-0000-4000-8000-000000000000")?.subnet, "subnet defaults to the VNet's first").toBe(`${vnetId("hub")}/subnets/app`);
    expect(after.complete).toBe(true);
  });

  it("azure inventory - a slow answer still completes", async () => {
    seed(1);
    sim.faults.add({ kind: "slow", count: 1, operation: "virtualNetworks.listAll", delayMs: 300 });
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(true);
    expect(snap.networks).toHaveLength(1);
  });
});

describe("azure error classification", () => {
  it("azure errors - connection failures are transient, 404 is not, Retry-After dates are read", () => {
    const net = classifyAzureError(Object.assign(new Error("connect ECONNREFUSED"), { name: "RestError", code: "ECONNREFUSED" }), "x");
    expect(net).toBeInstanceOf(InventoryTransientError);
    const nf = classifyAzureError(Object.assign(new Error("gone"), { name: "RestError", statusCode: 404, code: "ResourceNotFound" }), "x") as InventoryTransientError;
    expect(nf.retryable).toBe(false);
    expect(nf.code).toBe("http_404");
    const when = new Date(Date.now() + 5_000).toUTCString();
    const t = classifyAzureError(Object.assign(new Error("slow down"), { name: "RestError", statusCode: 429, response: { headers: { get: (h: string) => (h === "retry-after" ? when : undefined) } } }), "x") as InventoryTransientError;
    expect(t.retryAfterMs, "a date ~5 s ahead").toBeGreaterThan(3_000);
    expect(t.retryAfterMs).toBeLessThanOrEqual(5_000);
  });
});
