/**
 * The instance identity the agent presents: read from the AWS simulator's IMDSv2 service, put into
 * the enrollment request and accepted by a real controller whose inventory has the instance (a join
 * key with an instance selector, and keyless through an enrollment policy); metadata failures are
 * AgentErrors naming the service, retryable when the reader says so.
 */
import { Kvm } from "@nats-io/kv";
import { startAwsSim, type AwsSim } from "@weft/cloud-sim";
import { Buckets, generateKeyPair, type EnrollRequest } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InventoryStore } from "../../controller/src/inventory/store.js";
import { agentIdentity, startTestController, type TestController } from "../../controller/src/testing.js";
import { AgentConfig } from "../../agent/src/config.js";
import { AgentError, EnrollmentRejectedError } from "../../agent/src/errors.js";
import { enroll } from "../../agent/src/enroll/client.js";
import { InstanceMetadataError, readInstanceIdentity } from "../../agent/src/enroll/instance.js";

const ACCOUNT = "210987654321";
const INSTANCE = "i-0a9e47000000000001";
let sim: AwsSim;
let t: TestController;

beforeAll(async () => {
  // The agent (this process) calls from 127.0.0.1: the simulator serves that instance's metadata.
  sim = await startAwsSim({ account: ACCOUNT, metadata: { host: "127.0.0.1", port: 0 } });
  sim.store.addInstance({ id: INSTANCE, name: "agent-host", region: "eu-central-1", zone: "eu-central-1b", network: "vpc-lab", privateIp: "127.0.0.1", tags: { env: "prod" } });
  t = await startTestController();
  const inventory = new InventoryStore(await new Kvm(t.running.nc).open(Buckets.inventory));
  await inventory.upsertInstance(
    {
      provider: "aws",
      account: ACCOUNT,
      region: "eu-central-1",
      zone: "eu-central-1b",
      network: "vpc-lab",
      id: INSTANCE,
      name: "agent-host",
      privateIps: ["127.0.0.1"],
      publicIps: [],
      tags: { env: "prod" },
      state: "running",
      seenAt: new Date().toISOString(),
    },
    () => false,
  );
});
afterAll(async () => {
  await t?.stop();
  await sim?.close();
});

/** The request enrollOnce sends: the agent's keys, `joinKey` if any, the identity read from the simulator. */
async function request(joinKey: string | undefined): Promise<EnrollRequest> {
  const body = agentIdentity(joinKey ?? "unused", generateKeyPair().publicKey).body;
  if (joinKey === undefined) delete body["joinKey"];
  const instance = await readInstanceIdentity({ provider: "aws", metadataEndpoint: sim.metadataUrl });
  return { ...(body as unknown as EnrollRequest), instance };
}

describe("agent instance identity", () => {
  it("agent identity - read from the simulated IMDSv2 service as the claim for this instance", async () => {
    const claim = await readInstanceIdentity({ provider: "aws", metadataEndpoint: sim.metadataUrl });
    expect(claim, "claim").toEqual({ provider: "aws", id: INSTANCE, account: ACCOUNT, region: "eu-central-1", zone: "eu-central-1b" });
  });

  it("agent identity - a join key with a matching instance selector enrolls the agent", async () => {
    const key = await t.client.createJoinKey({ reusable: true, instanceSelector: { provider: "aws", account: ACCOUNT, tags: { env: "prod" } } });
    const got = await enroll(t.running.apiUrl, await request(key.key), { caHash: t.running.caHash });
    const node = await t.client.getNode(got.response.nodeId);
    expect(node.instance, "node's instance binding").toEqual({ provider: "aws", account: ACCOUNT, id: INSTANCE });
    await t.client.deleteNode(node.nodeId);
  });

  it("agent identity - without a join key: enrolled through a matching enrollment policy, refused with the reason otherwise", async () => {
    await t.client.applyEnrollmentPolicy({ name: "lab-dev", selector: { provider: "aws", tags: { env: "dev" } } });
    const refused = await enroll(t.running.apiUrl, await request(undefined), { caHash: t.running.caHash }).catch((e: unknown) => e);
    expect(refused, "keyless with no matching policy").toBeInstanceOf(EnrollmentRejectedError);
    expect([(refused as EnrollmentRejectedError).status, (refused as EnrollmentRejectedError).code], "status and code").toEqual([403, "instance_rejected"]);
    expect((refused as Error).message, "message").toMatch(new RegExp(`no enrollment policy matches instance ${INSTANCE} .*lab-dev: tags\\.env: want dev, instance has prod`));

    await t.client.applyEnrollmentPolicy({ name: "lab-prod", selector: { provider: "aws", account: ACCOUNT, tags: { env: "prod" } }, labels: { tier: "web" } });
    const got = await enroll(t.running.apiUrl, await request(undefined), { caHash: t.running.caHash });
    const node = await t.client.getNode(got.response.nodeId);
    expect({ tier: node.labels["tier"], instance: node.labels["cloud.instance"], env: node.labels["cloud.tag.env"], policy: node.enrollmentPolicy }, "node: the policy's labels and its instance's").toEqual({
      tier: "web",
      instance: INSTANCE,
      env: "prod",
      policy: "lab-prod",
    });
    await t.client.deleteNode(node.nodeId);
  });

  it("agent identity - an unreachable metadata service is a retryable error naming it", async () => {
    const err = await readInstanceIdentity({ provider: "aws", metadataEndpoint: "http://127.0.0.1:9" }).catch((e: unknown) => e);
    expect(err, "error").toBeInstanceOf(InstanceMetadataError);
    expect((err as AgentError).retryable, "retryable").toBe(true);
    expect((err as Error).message, "message").toMatch(/^enroll: cannot read the instance identity from the aws metadata service at http:\/\/127\.0\.0\.1:9: aws metadata: PUT \/latest\/api\/token: cannot reach/);
  });

  it("agent identity - a reader's final refusal stays final; a reader answering for another cloud is refused", async () => {
    const refusing = async () => Promise.reject(new AgentError("gcp metadata instance/id: HTTP 404", { retryable: false }));
    const refused = await readInstanceIdentity({ provider: "gcp" }, { gcp: refusing }).catch((e: unknown) => e);
    expect([refused instanceof InstanceMetadataError, (refused as AgentError).retryable], "404 from the reader").toEqual([true, false]);
    const thrown = await readInstanceIdentity({ provider: "gcp" }, { gcp: async () => Promise.reject(new Error("boom")) }).catch((e: unknown) => e);
    expect((thrown as AgentError).retryable, "a plain error from a reader").toBe(true);
    const wrong = await readInstanceIdentity({ provider: "azure" }, { azure: async () => ({ provider: "aws", id: "i-1" }) }).catch((e: unknown) => e);
    expect((wrong as Error).message, "another cloud's identity").toMatch(/answered with a aws identity; check cloud.provider/);
  });

  it("agent identity - config: cloud.provider must be aws, azure or gcp; the endpoint an http(s) URL", () => {
    expect(AgentConfig.safeParse({ cloud: { provider: "aws", metadataEndpoint: "http://198.18.0.1:8080" } }).success, "aws with endpoint").toBe(true);
    expect(AgentConfig.safeParse({ cloud: { provider: "onprem" } }).success, "onprem").toBe(false);
    expect(AgentConfig.safeParse({ cloud: { provider: "aws", metadataEndpoint: "ftp://x" } }).success, "ftp endpoint").toBe(false);
    expect(AgentConfig.safeParse({ cloud: { provider: "aws", extra: 1 } }).success, "unknown field").toBe(false);
  });
});
