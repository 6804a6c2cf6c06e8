import { DescribeInstancesCommand, DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client, paginateDescribeInstances } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCredentialScope, startAwsSim, type AwsSim } from "./index.js";

const ACCOUNT = "123456789012";
const creds = { accessKeyId: "AKIDSIM", secretAccessKey: "secret" };

let sim: AwsSim;
const client = (region: string) => new EC2Client({ region, endpoint: sim.url, credentials: creds, maxAttempts: 1 });

/** A signed-looking request with the raw body, to check the wire format itself. */
async function raw(body: string, region = "eu-west-1"): Promise<{ status: number; text: string }> {
  const res = await fetch(sim.url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `AWS4-HMAC-SHA256 Credential=AKIDSIM/20250101/${region}/ec2/aws4_request, SignedHeaders=host, Signature=00`,
    },
    body,
  });
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  sim = await startAwsSim({ account: ACCOUNT });
  sim.store.addNetwork({ id: "vpc-0a", name: "main", region: "eu-west-1", cidrs: ["10.0.0.0/16", "10.9.0.0/16"], subnets: [{ id: "subnet-0a", cidr: "10.0.1.0/24", zone: "eu-west-1a", name: "app" }] });
  sim.store.addNetwork({ id: "vpc-0b", name: "east", region: "us-east-1", cidrs: ["10.1.0.0/16"], subnets: [{ id: "subnet-0b", cidr: "10.1.1.0/24" }] });
  for (let n = 0; n < 23; n++) {
    sim.store.addInstance({ id: `i-0${String(n).padStart(16, "0")}`, name: `web-${n}`, region: "eu-west-1", zone: "eu-west-1a", network: "vpc-0a", subnet: "subnet-0a", privateIp: `10.0.1.${n + 10}`, tags: { Name: `web-${n}` } });
  }
  sim.store.addInstance({ id: "i-0east", name: "east", region: "us-east-1", network: "vpc-0b", subnet: "subnet-0b", privateIp: "10.1.1.5", publicIp: "3.0.0.5", tags: {} });
});
afterAll(async () => {
  await sim.close();
});

describe("aws sim", () => {
  it("aws sim - credential scope names the region", () => {
    expect(parseCredentialScope("AWS4-HMAC-SHA256 Credential=AKID/20250101/ap-south-1/ec2/aws4_request, SignedHeaders=host, Signature=ab")).toEqual({ accessKeyId: "AKID", region: "ap-south-1" });
    expect(parseCredentialScope(undefined)).toBeUndefined();
  });

  it("aws sim - DescribeInstances speaks the EC2 Query XML shape", async () => {
    const { status, text } = await raw("Action=DescribeInstances&Version=2016-11-15&MaxResults=5");
    expect(status).toBe(200);
    expect(text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<DescribeInstancesResponse xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/"><requestId>[0-9a-f-]{36}<\/requestId><reservationSet><item><reservationId>r-/);
    expect(text).toContain("<instancesSet><item><instanceId>i-00000000000000000</instanceId>");
    expect(text).toContain("<instanceState><code>16</code><name>running</name></instanceState>");
    expect(text).toContain("<tagSet><item><key>Name</key><value>web-0</value></item></tagSet>");
    expect(text).toMatch(/<nextToken>[A-Za-z0-9_-]+<\/nextToken><\/DescribeInstancesResponse>$/);
  });

  it("aws sim - the SDK pages DescribeInstances to the end in stable order", async () => {
    const ids: string[] = [];
    let pages = 0;
    for await (const page of paginateDescribeInstances({ client: client("eu-west-1"), pageSize: 10 }, {})) {
      pages++;
      for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) ids.push(i.InstanceId!);
    }
    expect(pages).toBe(3);
    expect(ids).toHaveLength(23);
    expect([...ids].sort()).toEqual(ids);
  });

  it("aws sim - each region sees only its instances and VPCs", async () => {
    const east = await client("us-east-1").send(new DescribeInstancesCommand({}));
    const got = east.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(got.map((i) => i.InstanceId)).toEqual(["i-0east"]);
    expect(got[0]?.PublicIpAddress).toBe("3.0.0.5");
    expect(got[0]?.PrivateDnsName).toBe("ip-10-1-1-5.ec2.internal");
    const vpcs = await client("eu-west-1").send(new DescribeVpcsCommand({}));
    expect(vpcs.Vpcs?.map((v) => [v.VpcId, v.CidrBlock, v.CidrBlockAssociationSet?.map((a) => a.CidrBlock), v.Tags])).toEqual([
      ["vpc-0a", "10.0.0.0/16", ["10.0.0.0/16", "10.9.0.0/16"], [{ Key: "Name", Value: "main" }]],
    ]);
    const subnets = await client("eu-west-1").send(new DescribeSubnetsCommand({}));
    expect(subnets.Subnets?.map((s) => [s.SubnetId, s.VpcId, s.CidrBlock, s.AvailabilityZone])).toEqual([["subnet-0a", "vpc-0a", "10.0.1.0/24", "eu-west-1a"]]);
  });

  it("aws sim - instance-state-name filter and terminated instances lose their network", async () => {
    sim.store.setState("i-00000000000000022", "terminated");
    const c = client("eu-west-1");
    const out = await c.send(new DescribeInstancesCommand({ Filters: [{ Name: "instance-state-name", Values: ["terminated"] }] }));
    const got = out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(got.map((i) => [i.InstanceId, i.State?.Code, i.State?.Name, i.VpcId, i.PrivateIpAddress])).toEqual([["i-00000000000000022", 48, "terminated", undefined, undefined]]);
    sim.store.setState("i-00000000000000022", "running");
  });

  it("aws sim - errors use EC2's shape and status", async () => {
    sim.faults.add({ kind: "throttle", count: 1, operation: "DescribeVpcs" });
    const t = await raw("Action=DescribeVpcs&Version=2016-11-15");
    expect(t.status).toBe(503);
    expect(t.text).toMatch(/<Response><Errors><Error><Code>RequestLimitExceeded<\/Code><Message>Request limit exceeded.<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/);
    const bad = await raw("Action=DescribeInstances&Version=2016-11-15&MaxResults=2");
    expect([bad.status, /<Code>(.*?)<\/Code>/.exec(bad.text)?.[1]]).toEqual([400, "InvalidParameterValue"]);
    const unknown = await raw("Action=RunInstances&Version=2016-11-15");
    expect([unknown.status, /<Code>(.*?)<\/Code>/.exec(unknown.text)?.[1]]).toEqual([400, "InvalidAction"]);
    const token = await raw("Action=DescribeInstances&Version=2016-11-15&NextToken=nonsense");
    expect([token.status, /<Code>(.*?)<\/Code>/.exec(token.text)?.[1]]).toEqual([400, "InvalidPaginationToken"]);
    const unsigned = await fetch(sim.url, { method: "POST", body: "Action=DescribeVpcs&Version=2016-11-15" });
    expect(unsigned.status).toBe(401);
  });

  it("aws sim - the SDK sees fault codes and statuses", async () => {
    const c = client("eu-west-1");
    for (const [kind, status, code] of [["throttle", 503, "RequestLimitExceeded"], ["server-error", 500, "InternalError"], ["auth", 401, "AuthFailure"]] as const) {
      sim.faults.add({ kind, count: 1, operation: "DescribeSubnets" });
      const err = (await c.send(new DescribeSubnetsCommand({})).catch((e: unknown) => e)) as { name: string; $metadata: { httpStatusCode: number } };
      expect([err.name, err.$metadata.httpStatusCode], kind).toEqual([code, status]);
    }
  });

  it("aws sim - a fault scoped to <region>/<Action> hits only that region", async () => {
    await sim.admin.fault({ kind: "server-error", count: -1, operation: "us-east-1/DescribeVpcs" });
    await expect(client("us-east-1").send(new DescribeVpcsCommand({}))).rejects.toMatchObject({ name: "InternalError" });
    await expect(client("eu-west-1").send(new DescribeVpcsCommand({}))).resolves.toBeDefined();
    await sim.admin.clearFaults();
  });

  it("aws sim - the admin interface is served on the API listener", async () => {
    await sim.admin.addInstance({ id: "i-0admin", name: "a", region: "eu-central-1", network: "vpc-x", privateIp: "10.5.0.1", tags: { role: "db" } });
    await sim.admin.retag("i-0admin", { role: "cache" });
    await sim.admin.stop("i-0admin");
    const out = await client("eu-central-1").send(new DescribeInstancesCommand({}));
    const i = out.Reservations?.[0]?.Instances?.[0];
    expect([i?.InstanceId, i?.State?.Name, i?.State?.Code, i?.Tags]).toEqual(["i-0admin", "stopped", 80, [{ Key: "role", Value: "cache" }]]);
    expect((await sim.admin.calls()).DescribeInstances).toBeGreaterThan(0);
  });

  it("aws sim - a network added and removed through the admin interface comes and goes from DescribeVpcs; removing an unknown one is 404", async () => {
    const vpcIds = async () => (await client("ap-south-1").send(new DescribeVpcsCommand({}))).Vpcs?.map((v) => v.VpcId);
    await sim.admin.addNetwork({ id: "vpc-0tmp", name: "tmp", region: "ap-south-1", cidrs: ["10.7.0.0/16"], subnets: [] });
    expect(await vpcIds(), "after add").toEqual(["vpc-0tmp"]);
    await sim.admin.removeNetwork("vpc-0tmp");
    expect(await vpcIds(), "after remove").toEqual([]);
    await expect(sim.admin.removeNetwork("vpc-0tmp"), "removing it again").rejects.toThrow(/404|no network vpc-0tmp/);
  });
});
