/**
 * End-to-end tests of signed instance identity on the lab (issue 11, item 1). The cloud simulators
 * in the gateways sign instance documents with test keys made for the run; the controller trusts
 * those keys only (the lab's inventory config). Attacks are made the way an attacker would: `curl`
 * inside a lab host's namespace reads that host's metadata service and posts to the controller's
 * API, so the controller sees the host's real source address.
 *
 * One lab (prefix `wtt`), in order: each cloud's agent joins keyless by its signed document → a
 * replayed Azure nonce → a GCP token for another audience, and an expired one → an AWS document of
 * an already-bound instance, and of a terminated one → an unsigned claim naming an instance's
 * private endpoint, and a captured document presented from another instance's address: each 403,
 * with no node and no binding left behind → the refused instances' own agents join afterwards with
 * the same names (so no name, key or document use was left claimed) and the keyless mesh forms.
 * Needs root; skipped with a message otherwise.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ControllerClient, MetadataProvider } from "@weft/protocol";
import { SimAdmin, unixFetch } from "@weft/cloud-sim";
import { LAB_CLOUDS, LabCluster, METADATA_ADDRESS, instanceIdFor, labExec, labTopology, type LabOptions, type RunningClouds } from "@weft/lab";
import { generateKeyPair } from "../../agent/src/wireguard/keys.js";
import { agentIdentity } from "../../controller/src/testing.js";
import { controllerLogLine, waitUntil } from "./mesh.js";
import { labSuite } from "./lab-suite.js";

const PREFIX = process.env.WEFT_E2E_IDENTITY_PREFIX ?? "wtt";
const opts: LabOptions = { prefix: PREFIX };
const topology = labTopology({ prefix: PREFIX });
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("e2e identity: skipped: needs root (network namespaces, WireGuard)");

const suite = labSuite("identity", opts);
const { note } = suite;

describe.skipIf(!isRoot)("e2e identity", () => {
  let cluster: LabCluster;
  let client: ControllerClient;
  let clouds: RunningClouds;
  const admin = (p: MetadataProvider) => new SimAdmin("http://sim", unixFetch(clouds.adminSockets[p]));
  const host = (name: string) => topology.hosts.find((h) => h.name === name)!;
  const instanceOf = (name: string) => instanceIdFor(host(name).site as MetadataProvider, name);
  const nodeNamed = async (name: string) => (await client.listNodes()).find((n) => n.name === name);

  /** curl inside `on`'s namespace; stdout is the body, then a line with the HTTP status. */
  async function curl(on: string, args: string[], input?: string): Promise<{ status: number; body: string }> {
    const r = await labExec(opts, on, ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", ...args], input === undefined ? {} : { input });
    if (r.exitCode !== 0) throw new Error(`curl on ${on} ${args.join(" ")}: exit ${r.exitCode}: ${r.stderr}`);
    const at = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
  }
  const imds = (path: string) => `http://${METADATA_ADDRESS}${path}`;

  /** The AWS document and rsa2048 signature, read over IMDSv2 on `on`. */
  async function awsDocument(on: string): Promise<{ provider: "aws"; document: string; signature: string }> {
    const token = (await curl(on, ["-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", imds("/latest/api/token")])).body;
    const h = ["-H", `X-aws-ec2-metadata-token: ${token}`];
    const document = (await curl(on, [...h, imds("/latest/dynamic/instance-identity/document")])).body;
    const signature = (await curl(on, [...h, imds("/latest/dynamic/instance-identity/rsa2048")])).body;
    return { provider: "aws", document, signature };
  }

  /** An enrollment nonce from the controller, asked from `on`. */
  async function nonce(on: string): Promise<string> {
    const r = await api(on, "/v1/enroll/nonce", {});
    expect(r.status, `nonce from ${on}: ${r.body}`).toBe(201);
    return (JSON.parse(r.body) as { nonce: string }).nonce;
  }

  /** POST `body` (JSON) to the controller's API from `on`, trusting the controller's CA. */
  async function api(on: string, path: string, body: unknown): Promise<{ status: number; body: string }> {
    const ca = join(cluster.controllerStateDir, "tls", "ca.crt");
    return curl(on, ["--cacert", ca, "-H", "content-type: application/json", "--data-binary", "@-", `${cluster.controllerUrl}${path}`], JSON.stringify(body));
  }

  /** An enrollment body named `name` (fresh keys), presenting `proof`. */
  function enrollBody(name: string, proof: Record<string, unknown>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const b = agentIdentity("unused", generateKeyPair().publicKey, { name, site: host(name).site, ...overrides }).body;
    delete b["joinKey"];
    return { ...b, ...proof };
  }

  /** What must not change on a refusal: the nodes, and every instance's binding. */
  async function snapshot(): Promise<{ nodes: string[]; bindings: string[] }> {
    const [nodes, view] = await Promise.all([client.listNodes(), client.inventory()]);
    return { nodes: nodes.map((n) => `${n.nodeId} ${n.name}`).sort(), bindings: view.instances.map((i) => `${i.id}=${i.boundNode ?? "-"}`).sort() };
  }

  /**
   * Posts an enrollment from `on` and wants 403 instance_rejected with nothing stored: the caller
   * gets the code and a generic message with a reference, the controller's log line under that
   * reference carries the detail matching `reason`. Answers the logged detail.
   */
  async function expectRefused(what: string, on: string, body: Record<string, unknown>, reason: RegExp): Promise<string> {
    const before = await snapshot();
    const r = await api(on, "/v1/enroll", body);
    expect(r.status, `${what}: got ${r.status} ${r.body}, want 403`).toBe(403);
    const err = JSON.parse(r.body) as { error: string; message: string };
    expect(err.error, `${what}: error code`).toBe("instance_rejected");
    expect(err.message, `${what}: the body says nothing but a reference`).toMatch(/^enrollment refused: the instance identity does not admit this enrollment \(reference ref-[0-9a-f]{10}\)$/);
    const detail = await loggedDetail(err.message);
    expect(detail, `${what}: the controller's log`).toMatch(reason);
    expect(await snapshot(), `${what}: nodes and bindings after the refusal`).toEqual(before);
    note(`${what}: 403 (log: "${detail.slice(0, 150)}")`);
    return detail;
  }

  /**
   * The `err` of the controller's `request refused` log line with the reference `message` carries.
   * The controller writes the line before it answers, but the lab's log file is fed through a pipe:
   * the line may land a moment after the answer, so it is looked for until it does (5 s at most).
   */
  async function loggedDetail(message: string): Promise<string> {
    const reference = /ref-[0-9a-f]{10}/.exec(message)?.[0];
    if (!reference) throw new Error(`no reference in ${message}`);
    return String((JSON.parse(await controllerLogLine(cluster.logDir, reference)) as { err?: unknown }).err ?? "");
  }

  suite.hooks({
    cluster: () => new LabCluster({ ...opts, clouds: true }),
    setup: async (c) => {
      cluster = c;
      clouds = await cluster.startClouds();
      await cluster.startController(["--inventory-config", clouds.inventoryConfigPath]);
      client = await cluster.client();
      const sync = await client.syncInventory();
      expect(sync.accounts.filter((a) => a.result !== "ok").map((a) => a.provider), "accounts whose first sync failed").toEqual([]);
      for (const provider of ["aws", "azure", "gcp"] as const) {
        await client.applyEnrollmentPolicy({ name: `lab-${provider}`, selector: { provider, account: LAB_CLOUDS[provider].account, tags: { env: "lab" } }, labels: { via: "policy" } });
      }
    },
  });

  it("e2e identity - an agent in each cloud joins keyless with its signed document (AWS rsa2048, Azure attested + nonce, GCP token for this controller)", async () => {
    const t0 = Date.now();
    await Promise.all(["aws-1", "azure-1", "gcp-1"].map((h) => cluster.startAgent(h)));
    for (const h of ["aws-1", "azure-1", "gcp-1"]) await waitUntil(`${h} enrolled`, 60_000, async () => (await nodeNamed(h)) !== undefined, 250);
    note(`aws-1, azure-1, gcp-1 enrolled keyless ${Date.now() - t0} ms after their agents started`);
    for (const h of ["aws-1", "azure-1", "gcp-1"]) {
      const node = (await nodeNamed(h))!;
      expect(node.instance, `${h}: bound instance`).toEqual({ provider: host(h).site, account: LAB_CLOUDS[host(h).site as MetadataProvider].account, id: expect.any(String) });
      expect(node.labels.via, `${h}: policy labels`).toBe("policy");
    }
    const log = await readFile(join(cluster.logDir, "controller.log"), "utf8");
    for (const evidence of [/AWS RSA-2048 PKCS#7/, /Azure attested data PKCS#7 \(signed by metadata\.azure\.com\), nonce \d{10}/, /GCP identity token \(RS256, aud https:/]) {
      expect(log, `controller log: "node enrolled" with ${evidence}`).toMatch(evidence);
    }
  });

  it("e2e identity - Azure: a document enrolls once; the same document (its nonce used) is refused, and so is a nonce the controller never issued", async () => {
    const n = await nonce("azure-2");
    const res = await curl("azure-2", ["-H", "Metadata: true", imds(`/metadata/attested/document?api-version=2021-02-01&nonce=${n}`)]);
    const attestation = { provider: "azure", signature: (JSON.parse(res.body) as { signature: string }).signature };
    const first = await api("azure-2", "/v1/enroll", enrollBody("azure-2", { attestation }));
    expect(first.status, `first use: ${first.body}`).toBe(201);
    const { nodeId } = JSON.parse(first.body) as { nodeId: string };
    await client.deleteNode(nodeId);
    await expectRefused("replayed azure nonce", "azure-2", enrollBody("azure-2", { attestation }), new RegExp(`nonce ${n} was already used`));
    const other = await curl("azure-2", ["-H", "Metadata: true", imds("/metadata/attested/document?api-version=2021-02-01&nonce=1234567890")]);
    const forged = { provider: "azure", signature: (JSON.parse(other.body) as { signature: string }).signature };
    await expectRefused("azure nonce never issued", "azure-2", enrollBody("azure-2", { attestation: forged }), /nonce 1234567890 was not issued by this controller/);
  });

  it("e2e identity - GCP: a token for another audience and an expired token are refused", async () => {
    const token = async (audience: string) => (await curl("gcp-2", ["-H", "Metadata-Flavor: Google", imds(`/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(audience)}&format=full`)])).body.trim();
    await expectRefused("gcp token for another audience", "gcp-2", enrollBody("gcp-2", { attestation: { provider: "gcp", token: await token("https://other-service.example") } }), /audience "https:\/\/other-service\.example" is not this controller's/);
    await admin("gcp").identityAge(7200);
    try {
      await expectRefused("expired gcp token", "gcp-2", enrollBody("gcp-2", { attestation: { provider: "gcp", token: await token(clouds.gcpAudience) } }), /gcp identity token: expired/);
    } finally {
      await admin("gcp").identityAge(0);
    }
  });

  it("e2e identity - AWS: the document of an instance already bound, and of a terminated instance, are refused", async () => {
    await expectRefused("aws document of the bound aws-1", "aws-1", enrollBody("aws-1", { attestation: await awsDocument("aws-1") }, { name: "aws-1-again" }), /already bound to node|was already used to enroll node/);
    const captured = await awsDocument("aws-2");
    await admin("aws").terminate(instanceOf("aws-2"));
    await client.syncInventory();
    await expectRefused("aws document of the terminated aws-2", "aws-2", enrollBody("aws-2", { attestation: captured }), /is terminated in the inventory/);
  });

  it("e2e identity - a forged private endpoint from another address is refused: unsigned, or a captured document from another instance", async () => {
    const onprem = host("onprem-1");
    await expectRefused(
      "unsigned claim of onprem-1 with its private endpoint, from aws-1",
      "aws-1",
      enrollBody("aws-1", { instance: { provider: "onprem", id: "onprem-1", account: "onprem" } }, { name: "ledger-twin", site: "onprem", endpoints: { private: `${onprem.privateAddress}:51820` } }),
      /an unsigned instance claim proves nothing and is refused/,
    );
    const gcp2 = host("gcp-2");
    const token = (await curl("gcp-2", ["-H", "Metadata-Flavor: Google", imds(`/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(clouds.gcpAudience)}&format=full`)])).body.trim();
    await expectRefused(
      "gcp-2's token and private endpoint, presented from azure-1",
      "azure-1",
      enrollBody("gcp-2", { attestation: { provider: "gcp", token } }, { endpoints: { private: `${gcp2.privateAddress}:51820` } }),
      /the enrollment came from 198\.18\.\d+\.\d+, an address of another instance in the inventory/,
    );
  });

  it("e2e identity - the refused instances' own agents join afterwards with the same names, and the keyless mesh forms", async () => {
    const key = await client.createJoinKey({ reusable: false, ttlSeconds: 3600, description: "e2e: onprem (no cloud metadata)", site: "onprem", labels: { "weft:gateway": "true" } });
    const t0 = Date.now();
    await Promise.all([cluster.startAgent("azure-2"), cluster.startAgent("gcp-2"), cluster.startAgent("onprem-1", key.key)]);
    const live = topology.hosts.map((h) => h.name).filter((h) => h !== "aws-2");
    await waitUntil("every live host enrolled", 60_000, async () => (await client.listNodes()).length === live.length, 250);
    expect((await client.listNodes()).map((n) => n.name).sort(), "enrolled nodes (aws-2's instance is terminated)").toEqual([...live].sort());
    await cluster.waitForFullMesh(90_000);
    note(`azure-2, gcp-2 (keyless) and onprem-1 (key) joined after the refusals; full mesh of ${live.length} hosts ${Date.now() - t0} ms after their agents started`);
  });
});
