import { startAwsSim, type AwsSim } from "@weft/cloud-sim";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InventoryAuthError, InventoryTransientError } from "../errors.js";
import { InventorySnapshot, type Instance } from "../model.js";
import { AwsInventory, type AwsInventoryOptions } from "./index.js";

const ACCOUNT = "123456789012";
const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "secret" };

let sim: AwsSim;
let inv: AwsInventory | undefined;
const retries: { code: string; attempt: number }[] = [];

function inventory(o: Partial<AwsInventoryOptions> = {}): AwsInventory {
  inv = new AwsInventory({
    account: ACCOUNT,
    regions: ["eu-west-1", "us-east-1"],
    endpoint: sim.url,
    credentials,
    retry: { attempts: 4, baseDelayMs: 1, sleep: async () => {}, onRetry: (err, attempt) => retries.push({ code: err.code, attempt }) },
    ...o,
  });
  return inv;
}

function addFleet(region: string, count: number, prefix: string, ipBase: string): void {
  for (let n = 0; n < count; n++) {
    sim.store.addInstance({ id: `i-0${prefix}${String(n).padStart(15, "0")}`, name: "", region, zone: `${region}a`, network: `vpc-${prefix}`, subnet: `subnet-${prefix}`, privateIp: `${ipBase}.${n + 10}`, tags: { role: "web" } });
  }
}

const byId = (s: InventorySnapshot, id: string): Instance | undefined => s.instances.find((i) => i.id === id);

beforeEach(async () => {
  retries.length = 0;
  sim = await startAwsSim({ account: ACCOUNT });
  sim.store.addNetwork({ id: "vpc-0eu", name: "eu-main", region: "eu-west-1", cidrs: ["10.0.0.0/16", "10.100.0.0/16"], subnets: [{ id: "subnet-0eu", cidr: "10.0.1.0/24", zone: "eu-west-1a", name: "app" }, { id: "subnet-0eu2", cidr: "10.100.1.0/24", zone: "eu-west-1b" }] });
  sim.store.addNetwork({ id: "vpc-0us", name: "us-main", region: "us-east-1", cidrs: ["10.1.0.0/16"], subnets: [{ id: "subnet-0us", cidr: "10.1.1.0/24", zone: "us-east-1c" }] });
});
afterEach(async () => {
  inv?.close();
  inv = undefined;
  await sim.close();
});

describe("aws inventory", () => {
  it("aws inventory - follows NextToken across pages to the end", async () => {
    addFleet("eu-west-1", 25, "eu", "10.0.1");
    const many = Array.from({ length: 12 }, (_, n) => ({ id: `subnet-0many${String(n).padStart(2, "0")}`, cidr: `10.50.${n}.0/24` }));
    sim.store.addNetwork({ id: "vpc-0many", name: "many", region: "eu-west-1", cidrs: ["10.50.0.0/16"], subnets: many });
    const snap = await inventory({ regions: ["eu-west-1"], pageSize: 10 }).fetch();
    expect(snap.complete).toBe(true);
    expect(snap.instances.map((i) => i.id)).toEqual([...sim.store.list()].map((i) => i.id).sort());
    expect(snap.instances).toHaveLength(25);
    expect(sim.faults.calls.get("DescribeInstances"), "DescribeInstances calls (3 pages)").toBe(3);
    expect(snap.networks.find((n) => n.id === "vpc-0many")?.subnets.map((x) => x.id)).toEqual(many.map((x) => x.id));
    expect(sim.faults.calls.get("DescribeSubnets"), "DescribeSubnets calls (14 subnets, 2 pages)").toBe(2);
    expect(InventorySnapshot.safeParse(snap).success).toBe(true);
  });

  it("aws inventory - maps every field of an instance and its network", async () => {
    sim.store.addInstance({
      id: "i-0abcdef1234567890",
      name: "ignored",
      region: "eu-west-1",
      zone: "eu-west-1b",
      network: "vpc-0eu",
      subnet: "subnet-0eu2",
      privateIp: "10.100.1.7",
      publicIp: "203.0.113.7",
      tags: { Name: "gateway-1", "weft:site": "eu", env: "prod" },
      extra: { instanceType: "c7g.large", architecture: "arm64" },
    });
    sim.store.addInstance({ id: "i-0noname", name: "", region: "eu-west-1", network: "vpc-0eu", privateIp: "10.0.1.9", tags: {}, state: "pending" });
    const snap = await inventory({ regions: ["eu-west-1"] }).fetch();
    expect(byId(snap, "i-0abcdef1234567890")).toEqual({
      provider: "aws",
      account: ACCOUNT,
      region: "eu-west-1",
      zone: "eu-west-1b",
      network: "vpc-0eu",
      subnet: "subnet-0eu2",
      id: "i-0abcdef1234567890",
      name: "gateway-1",
      privateIps: ["10.100.1.7"],
      publicIps: ["203.0.113.7"],
      tags: { Name: "gateway-1", "weft:site": "eu", env: "prod" },
      state: "running",
    } satisfies Instance);
    const noName = byId(snap, "i-0noname");
    expect([noName?.name, noName?.state, noName?.publicIps, noName?.subnet]).toEqual(["i-0noname", "pending", [], undefined]);
    expect(snap.networks).toEqual([
      {
        provider: "aws",
        account: ACCOUNT,
        region: "eu-west-1",
        id: "vpc-0eu",
        name: "eu-main",
        cidrs: ["10.0.0.0/16", "10.100.0.0/16"],
        subnets: [
          { id: "subnet-0eu", cidr: "10.0.1.0/24", zone: "eu-west-1a", name: "app" },
          { id: "subnet-0eu2", cidr: "10.100.1.0/24", zone: "eu-west-1b" },
        ],
      },
    ]);
  });

  it("aws inventory - reads every region, each with its own instances", async () => {
    addFleet("eu-west-1", 3, "eu", "10.0.1");
    addFleet("us-east-1", 2, "us", "10.1.1");
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(true);
    const regions = Object.fromEntries(["eu-west-1", "us-east-1"].map((r) => [r, snap.instances.filter((i) => i.region === r).map((i) => i.id)]));
    expect(regions).toEqual({
      "eu-west-1": ["i-0eu000000000000000", "i-0eu000000000000001", "i-0eu000000000000002"],
      "us-east-1": ["i-0us000000000000000", "i-0us000000000000001"],
    });
    expect(snap.networks.map((n) => [n.region, n.id])).toEqual([["eu-west-1", "vpc-0eu"], ["us-east-1", "vpc-0us"]]);
  });

  it("aws inventory - throttling is retried, then the fetch succeeds", async () => {
    addFleet("eu-west-1", 12, "eu", "10.0.1");
    sim.faults.add({ kind: "throttle", count: 2, operation: "DescribeInstances" });
    const snap = await inventory({ regions: ["eu-west-1"], pageSize: 5 }).fetch();
    expect(snap.complete).toBe(true);
    expect(snap.instances).toHaveLength(12);
    expect(sim.faults.calls.get("DescribeInstances"), "3 pages + 2 throttled").toBe(5);
    expect(retries).toEqual([{ code: "throttled", attempt: 1 }, { code: "throttled", attempt: 2 }]);
  });

  it("aws inventory - a 5xx is retried", async () => {
    addFleet("eu-west-1", 2, "eu", "10.0.1");
    sim.faults.add({ kind: "server-error", count: 1, operation: "DescribeVpcs" });
    const snap = await inventory({ regions: ["eu-west-1"] }).fetch();
    expect(snap.complete).toBe(true);
    expect(snap.networks).toHaveLength(1);
    expect(sim.faults.calls.get("DescribeVpcs")).toBe(2);
    expect(retries).toEqual([{ code: "server_error", attempt: 1 }]);
  });

  it("aws inventory - refused credentials throw InventoryAuthError without retrying", async () => {
    addFleet("eu-west-1", 2, "eu", "10.0.1");
    sim.faults.add({ kind: "auth", count: -1 });
    const started = Date.now();
    const err = await inventory({ retry: { attempts: 6, baseDelayMs: 1_000 } }).fetch().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InventoryAuthError);
    expect((err as InventoryAuthError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/^ec2 Describe\w+ \((eu-west-1|us-east-1)\): AuthFailure: /);
    expect(Date.now() - started, "ms until the auth error").toBeLessThan(2_000);
    const calls = [...sim.faults.calls.values()].reduce((a, b) => a + b, 0);
    expect(calls, "calls in all (3 operations x 2 regions, none retried)").toBeLessThanOrEqual(6);
    expect(retries).toEqual([]);
  });

  it("aws inventory - a region failing persistently leaves a partial snapshot", async () => {
    addFleet("eu-west-1", 3, "eu", "10.0.1");
    addFleet("us-east-1", 2, "us", "10.1.1");
    await sim.admin.fault({ kind: "server-error", count: -1, operation: "us-east-1/DescribeInstances" });
    const snap = await inventory().fetch();
    expect(snap.complete).toBe(false);
    expect(snap.issues).toEqual([{ scope: "us-east-1/DescribeInstances", code: "server_error", message: expect.stringMatching(/^ec2 DescribeInstances \(us-east-1\): InternalError: /) as string }]);
    expect(snap.instances.map((i) => i.id)).toEqual(["i-0eu000000000000000", "i-0eu000000000000001", "i-0eu000000000000002"]);
    expect(snap.networks.map((n) => n.id), "us-east-1's VPCs still read").toEqual(["vpc-0eu", "vpc-0us"]);
    expect(sim.faults.calls.get("us-east-1/DescribeInstances"), "attempts on the failing region").toBe(4);
  });

  it("aws inventory - an unreachable endpoint is a transient, reported failure", async () => {
    const closed = await startAwsSim({ account: ACCOUNT });
    const url = closed.url;
    await closed.close();
    const snap = await inventory({ endpoint: url, regions: ["eu-west-1"], retry: { attempts: 2, sleep: async () => {}, onRetry: (e, a) => retries.push({ code: e.code, attempt: a }) } }).fetch();
    expect(snap.complete).toBe(false);
    expect(snap.issues.map((i) => [i.scope, i.code])).toEqual([["eu-west-1/DescribeInstances", "network"], ["eu-west-1/DescribeVpcs", "network"], ["eu-west-1/DescribeSubnets", "network"]]);
    expect(retries.every((r) => r.code === "network")).toBe(true);
  });

  it("aws inventory - state changes, retags and removals show on the next fetch", async () => {
    addFleet("eu-west-1", 3, "eu", "10.0.1");
    const a = inventory({ regions: ["eu-west-1"] });
    const first = await a.fetch();
    expect(first.instances.map((i) => i.state)).toEqual(["running", "running", "running"]);
    await sim.admin.stop("i-0eu000000000000000");
    await sim.admin.terminate("i-0eu000000000000001");
    await sim.admin.retag("i-0eu000000000000002", { Name: "renamed", role: null, tier: "edge" });
    sim.store.setState("i-0eu000000000000002", "stopping");
    const second = await a.fetch();
    expect(byId(second, "i-0eu000000000000000")?.state).toBe("stopped");
    const gone = byId(second, "i-0eu000000000000001");
    expect([gone?.state, gone?.network, gone?.privateIps]).toEqual(["terminated", "", []]);
    const renamed = byId(second, "i-0eu000000000000002");
    expect([renamed?.name, renamed?.tags, renamed?.state]).toEqual(["renamed", { Name: "renamed", tier: "edge" }, "stopping"]);
    await sim.admin.remove("i-0eu000000000000001");
    expect((await a.fetch()).instances.map((i) => i.id)).toEqual(["i-0eu000000000000000", "i-0eu000000000000002"]);
  });

  it("aws inventory - the caller's abort ends the fetch", async () => {
    addFleet("eu-west-1", 2, "eu", "10.0.1");
    sim.faults.add({ kind: "slow", count: -1, delayMs: 5_000 });
    const ac = new AbortController();
    const p = inventory({ regions: ["eu-west-1"] }).fetch(ac.signal);
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toThrow();
    sim.faults.clear();
  });

  it("aws inventory - classification of EC2 errors", async () => {
    const { classifyEc2Error } = await import("./classify.js");
    const sdk = (name: string, status?: number) => Object.assign(new Error("m"), { name, $metadata: { httpStatusCode: status } });
    expect(classifyEc2Error(sdk("RequestLimitExceeded", 503), "op")).toBeInstanceOf(InventoryTransientError);
    expect(classifyEc2Error(sdk("Unavailable", 503), "op")).toBeInstanceOf(InventoryTransientError);
    expect(classifyEc2Error(sdk("UnauthorizedOperation", 403), "op")).toBeInstanceOf(InventoryAuthError);
    expect(classifyEc2Error(sdk("InvalidClientTokenId", 401), "op")).toBeInstanceOf(InventoryAuthError);
    const other = classifyEc2Error(sdk("InvalidParameterValue", 400), "op") as { retryable: boolean; code: string };
    expect([other.retryable, other.code]).toEqual([false, "InvalidParameterValue"]);
    expect(classifyEc2Error(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), "op")).toBeInstanceOf(InventoryTransientError);
  });
});
