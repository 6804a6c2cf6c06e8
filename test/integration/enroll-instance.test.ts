/**
 * The signed instance identity the agent presents: read from the simulators' metadata services
 * (AWS IMDSv2, Azure with a nonce the controller issued over the pinned-CA client, GCP for the
 * controller's audience), put into the enrollment request and accepted by a real controller that
 * trusts the simulators' keys and whose inventory has the instances (a join key with an instance
 * selector, and keyless through enrollment policies); metadata failures are AgentErrors naming the
 * service, retryable when the reader says so.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { startAwsSim, startAzureSim, startGcpSim, writeSimTrust, type AwsSim, type AzureSim, type GcpSim } from "@weft/cloud-sim";
import { Buckets, generateKeyPair, type EnrollRequest } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InventoryStore, type StoredInstance } from "../../controller/src/inventory/store.js";
import { agentIdentity, startTestController, type TestController } from "../../controller/src/testing.js";
import { AgentConfig } from "../../agent/src/config.js";
import { AgentError, EnrollmentRejectedError } from "../../agent/src/errors.js";
import { enroll, requestNonce } from "../../agent/src/enroll/client.js";
import { InstanceMetadataError, attestationAudience, readInstanceAttestation, type CloudConfig } from "../../agent/src/enroll/instance.js";

const ACCOUNT = "210987654321";
const INSTANCE = "i-0a9e4700000000001";
const SUB = "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10";
const VM = "5d7c0b6e-7a43-4f0b-9c1e-1f2d3c4b5a69";
const AUDIENCE = "https://weft-controller.test:8080";
let aws: AwsSim;
let azure: AzureSim;
let gcp: GcpSim;
let t: TestController;
let dir: string;

const instance = (o: Partial<StoredInstance> & Pick<StoredInstance, "provider" | "account" | "id" | "region">): StoredInstance => ({
  network: "net-lab",
  name: `host-${o.id}`,
  privateIps: ["127.0.0.1"],
  publicIps: [],
  tags: { env: "prod" },
  state: "running",
  seenAt: new Date().toISOString(),
  ...o,
});

beforeAll(async () => {
  // The agent (this process) calls from 127.0.0.1: each simulator serves that instance's metadata.
  [aws, azure, gcp] = await Promise.all([
    startAwsSim({ account: ACCOUNT, metadata: { host: "127.0.0.1", port: 0 } }),
    startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB, metadata: { host: "127.0.0.1", port: 0 } }),
    startGcpSim({ project: "weft-agent", metadata: { host: "127.0.0.1", port: 0 } }),
  ]);
  aws.store.addInstance({ id: INSTANCE, name: "agent-host", region: "eu-central-1", zone: "eu-central-1b", network: "vpc-lab", privateIp: "127.0.0.1", tags: { env: "prod" } });
  azure.store.addInstance({ id: VM, name: "agent-vm", region: "westeurope", zone: "1", network: "vnet", privateIp: "127.0.0.1", tags: {} });
  gcp.store.addInstance({ id: "gce-agent", name: "agent-gce", region: "europe-west1", zone: "europe-west1-b", network: "net", privateIp: "127.0.0.1", tags: {} });
  dir = await mkdtemp(join(tmpdir(), "weft-agent-trust-"));
  const files = { ...(await writeSimTrust(dir, aws.identity)), ...(await writeSimTrust(dir, azure.identity)), ...(await writeSimTrust(dir, gcp.identity)) };
  t = await startTestController({
    inventory: {
      instanceIdentity: {
        aws: { certificates: { "*": files.aws! } },
        azure: { rootsFile: files.azureRoots!, intermediatesFile: files.azureIntermediates! },
        gcp: { audience: AUDIENCE, jwksFile: files.gcpJwks! },
      },
    },
  });
  const inventory = new InventoryStore(await new Kvm(t.running.nc).open(Buckets.inventory));
  const gceId = (await (await fetch(`${gcp.metadataUrl!}/computeMetadata/v1/instance/id`, { headers: { "Metadata-Flavor": "Google" } })).text()).trim();
  for (const i of [
    instance({ provider: "aws", account: ACCOUNT, id: INSTANCE, region: "eu-central-1", zone: "eu-central-1b" }),
    instance({ provider: "azure", account: SUB, id: VM, region: "westeurope", zone: "1" }),
    instance({ provider: "gcp", account: "weft-agent", id: gceId, region: "europe-west1", zone: "europe-west1-b" }),
  ]) {
    await inventory.upsertInstance(i, () => false);
  }
});
afterAll(async () => {
  await t?.stop();
  await Promise.all([aws?.close(), azure?.close(), gcp?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const cloudOf = (provider: CloudConfig["provider"]): CloudConfig => {
  const endpoint = { aws: aws.metadataUrl, azure: azure.metadataUrl!, gcp: gcp.metadataUrl! }[provider];
  return { provider, metadataEndpoint: endpoint, ...(provider === "gcp" ? { audience: AUDIENCE } : {}) };
};

/** What enrollOnce sends: the agent's keys, `joinKey` if any, the signed identity read from `provider`'s simulator. */
async function request(joinKey: string | undefined, provider: CloudConfig["provider"] = "aws"): Promise<EnrollRequest> {
  const body = agentIdentity(joinKey ?? "unused", generateKeyPair().publicKey).body;
  if (joinKey === undefined) delete body["joinKey"];
  const attestation = await readInstanceAttestation(cloudOf(provider), {
    controllerUrl: t.running.apiUrl,
    nonce: async () => (await requestNonce(t.running.apiUrl, { caHash: t.running.caHash })).nonce,
  });
  return { ...(body as unknown as EnrollRequest), attestation };
}

/** A new launch of the AWS instance (stop, start): its next document is a new one. */
function relaunch(): void {
  const i = aws.store.instance(INSTANCE);
  i.launchedAt = new Date(Date.parse(i.launchedAt) + 1000).toISOString();
}

describe("agent instance identity", () => {
  it("agent identity - a join key with a matching instance selector enrolls the agent by its signed AWS document", async () => {
    const key = await t.client.createJoinKey({ reusable: true, instanceSelector: { provider: "aws", account: ACCOUNT, tags: { env: "prod" } } });
    const got = await enroll(t.running.apiUrl, await request(key.key), { caHash: t.running.caHash });
    const node = await t.client.getNode(got.response.nodeId);
    expect(node.instance, "node's instance binding").toEqual({ provider: "aws", account: ACCOUNT, id: INSTANCE });
    await t.client.deleteNode(node.nodeId);
    const again = await enroll(t.running.apiUrl, await request(key.key), { caHash: t.running.caHash }).catch((e: unknown) => e);
    expect((again as Error).message, "the agent is told only the code and a reference").not.toMatch(/i-0|n-[0-9a-f]{16}|already used/);
    expect(t.refusal((again as Error).message)?.message, "the same launch's document after the node was deleted (the controller's log)").toMatch(/was already used to enroll node/);
  });

  it("agent identity - without a join key: enrolled through a matching enrollment policy, refused with the reason otherwise", async () => {
    relaunch();
    await t.client.applyEnrollmentPolicy({ name: "lab-dev", selector: { provider: "aws", tags: { env: "dev" } } });
    const refused = await enroll(t.running.apiUrl, await request(undefined), { caHash: t.running.caHash }).catch((e: unknown) => e);
    expect(refused, "keyless with no matching policy").toBeInstanceOf(EnrollmentRejectedError);
    expect([(refused as EnrollmentRejectedError).status, (refused as EnrollmentRejectedError).code], "status and code").toEqual([403, "instance_rejected"]);
    expect((refused as Error).message, "the agent is told no instance, policy or tag").not.toMatch(new RegExp(`${INSTANCE}|lab-dev|prod`));
    expect(t.refusal((refused as Error).message)?.message, "the controller's log").toMatch(new RegExp(`no enrollment policy matches instance ${INSTANCE} .*lab-dev: tags\\.env: want dev, instance has prod`));

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

  it("agent identity - Azure: the agent asks the controller for a nonce, IMDS signs it in, the controller enrolls the VM", async () => {
    await t.client.applyEnrollmentPolicy({ name: "lab-azure", selector: { provider: "azure", account: SUB } });
    const got = await enroll(t.running.apiUrl, await request(undefined, "azure"), { caHash: t.running.caHash });
    expect((await t.client.getNode(got.response.nodeId)).instance, "bound VM").toEqual({ provider: "azure", account: SUB, id: VM });
  });

  it("agent identity - GCP: a token for the controller's audience enrolls the instance; the default audience is the controller URL's origin", async () => {
    await t.client.applyEnrollmentPolicy({ name: "lab-gcp", selector: { provider: "gcp", account: "weft-agent" } });
    const got = await enroll(t.running.apiUrl, await request(undefined, "gcp"), { caHash: t.running.caHash });
    expect((await t.client.getNode(got.response.nodeId)).instance?.provider, "bound instance").toBe("gcp");
    expect(attestationAudience({ provider: "gcp" }, "https://ctl.example.net:8080/some/path"), "default audience").toBe("https://ctl.example.net:8080");
    expect(attestationAudience({ provider: "gcp", audience: "weft" }, "https://ctl.example.net:8080"), "configured audience").toBe("weft");
  });

  it("agent identity - an unreachable metadata service is a retryable error naming it", async () => {
    const err = await readInstanceAttestation({ provider: "aws", metadataEndpoint: "http://127.0.0.1:9" }, { controllerUrl: "https://c:1", nonce: async () => "0" }).catch((e: unknown) => e);
    expect(err, "error").toBeInstanceOf(InstanceMetadataError);
    expect((err as AgentError).retryable, "retryable").toBe(true);
    expect((err as Error).message, "message").toMatch(/^enroll: cannot read the instance identity from the aws metadata service at http:\/\/127\.0\.0\.1:9: aws metadata: PUT \/latest\/api\/token: cannot reach/);
  });

  it("agent identity - a reader's final refusal stays final; a reader answering for another cloud is refused; a nonce failure passes through", async () => {
    const inputs = { controllerUrl: "https://c:1", nonce: async () => "0123456789" };
    const refusing = async () => Promise.reject(new AgentError("gcp metadata instance/id: HTTP 404", { retryable: false }));
    const refused = await readInstanceAttestation({ provider: "gcp" }, inputs, { gcp: refusing }).catch((e: unknown) => e);
    expect([refused instanceof InstanceMetadataError, (refused as AgentError).retryable], "404 from the reader").toEqual([true, false]);
    const thrown = await readInstanceAttestation({ provider: "gcp" }, inputs, { gcp: async () => Promise.reject(new Error("boom")) }).catch((e: unknown) => e);
    expect((thrown as AgentError).retryable, "a plain error from a reader").toBe(true);
    const wrong = await readInstanceAttestation({ provider: "azure" }, inputs, { azure: async () => ({ provider: "gcp", token: "a.b.c" }) }).catch((e: unknown) => e);
    expect((wrong as Error).message, "another cloud's identity").toMatch(/answered with a gcp identity; check cloud.provider/);
    const controllerDown = new AgentError("enroll: cannot reach controller", { retryable: true });
    const noNonce = await readInstanceAttestation({ provider: "azure" }, { ...inputs, nonce: async () => Promise.reject(controllerDown) }).catch((e: unknown) => e);
    expect(noNonce, "the controller's nonce error, unchanged").toBe(controllerDown);
  });

  it("agent identity - config: cloud.provider must be aws, azure or gcp; the endpoint an http(s) URL", () => {
    expect(AgentConfig.safeParse({ cloud: { provider: "aws", metadataEndpoint: "http://198.18.0.1:8080" } }).success, "aws with endpoint").toBe(true);
    expect(AgentConfig.safeParse({ cloud: { provider: "gcp", audience: "https://ctl:8080" } }).success, "gcp with audience").toBe(true);
    expect(AgentConfig.safeParse({ cloud: { provider: "onprem" } }).success, "onprem").toBe(false);
    expect(AgentConfig.safeParse({ cloud: { provider: "aws", metadataEndpoint: "ftp://x" } }).success, "ftp endpoint").toBe(false);
    expect(AgentConfig.safeParse({ cloud: { provider: "aws", extra: 1 } }).success, "unknown field").toBe(false);
  });
});
