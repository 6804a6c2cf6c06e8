/**
 * The inventory in a real controller (embedded nats-server) against real adapters: two AWS
 * accounts in the EC2 simulator read by AwsInventory, and an on-prem site file read by
 * OnpremInventory. Nodes enroll through the real enrollment path, are bound through the store
 * API, and are removed (NATS credential revoked) when their instance goes.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { startAwsSim, type AwsSim } from "@weft/cloud-sim";
import { Buckets, PeerRecord, generateKeyPair, type InventoryAccountStatus, type InventorySyncResult } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollAgent, eventually, startTestController, type EnrolledAgent, type TestController } from "../testing.js";
import type { InventoryConfigInput } from "./config.js";
import { InventoryStore, instanceKey } from "./store.js";

const A = "111111111111";
const B = "222222222222";
const REGION = "eu-west-1";

let simA: AwsSim;
let simB: AwsSim;
let dir: string;
let onpremFile: string;
let t: TestController;
let store: InventoryStore;
let joinKey: string;
const agents: EnrolledAgent[] = [];

const iid = (prefix: string, n: number) => `i-0${prefix}${String(n).padStart(15, "0")}`;
const ONPREM = (instances: string) => `site: dc-lab
networks:
  - id: lan
    cidrs: [10.0.0.0/16]
instances:
${instances}`;
const ONPREM_HOSTS = `  - id: h1.dc-lab
    network: lan
    privateIps: [10.0.9.1]
    tags: { role: db }
  - id: h2.dc-lab
    network: lan
    privateIps: [10.0.9.2]
`;

/** startTestController with an inventory section (its overrides type predates the section). */
function startWithInventory(inventory: InventoryConfigInput): Promise<TestController> {
  return startTestController({ inventory } as unknown as Parameters<typeof startTestController>[0]);
}

function statusOf(r: InventorySyncResult, provider: string, account: string): InventoryAccountStatus {
  const s = r.accounts.find((a) => a.provider === provider && a.account === account);
  if (!s) throw new Error(`no status for ${provider}:${account} in ${JSON.stringify(r.accounts.map((a) => `${a.provider}:${a.account}`))}`);
  return s;
}

async function enrollOn(instance: { provider: "aws" | "onprem"; account: string; id: string }, labelsKey = joinKey, site = "aws-eu"): Promise<string> {
  // A key that vouches for the site (a gateway's site must be vouched for), with the shared key's labels.
  const key = labelsKey === joinKey ? (await t.client.createJoinKey({ site, labels: { env: "prod", "weft:namespace": "base" } })).key : labelsKey;
  const agent = await enrollAgent(t, key, generateKeyPair().publicKey, { site });
  agents.push(agent);
  await store.bind(instanceKey(instance.provider, instance.account, instance.id), agent.enrolled.nodeId);
  return agent.enrolled.nodeId;
}

async function nodeExists(nodeId: string): Promise<boolean> {
  const res = await t.client.raw("GET", `/v1/nodes/${nodeId}`);
  return res.status === 200;
}

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = "AKIDTEST";
  process.env.AWS_SECRET_ACCESS_KEY = "secret";
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  simA = await startAwsSim({ account: A });
  simB = await startAwsSim({ account: B });
  simA.store.addNetwork({ id: "vpc-0a", name: "a-main", region: REGION, cidrs: ["10.0.0.0/16"], subnets: [{ id: "subnet-0a", cidr: "10.0.1.0/24", zone: `${REGION}a` }] });
  simB.store.addNetwork({ id: "vpc-0b", name: "b-main", region: REGION, cidrs: ["10.2.0.0/16"], subnets: [{ id: "subnet-0b", cidr: "10.2.1.0/24", zone: `${REGION}a` }] });
  for (let n = 1; n <= 6; n++) {
    simA.store.addInstance({ id: iid("a", n), name: `a${n}`, region: REGION, zone: `${REGION}a`, network: "vpc-0a", subnet: "subnet-0a", privateIp: `10.0.1.${n + 10}`, tags: { role: "web" } });
  }
  for (let n = 1; n <= 4; n++) {
    simB.store.addInstance({ id: iid("b", n), name: `b${n}`, region: REGION, network: "vpc-0b", subnet: "subnet-0b", privateIp: `10.2.1.${n + 10}`, tags: {} });
  }
  dir = await mkdtemp(join(tmpdir(), "weft-inv-"));
  onpremFile = join(dir, "dc-lab.yaml");
  await writeFile(onpremFile, ONPREM(ONPREM_HOSTS));
  t = await startWithInventory({
    intervalSeconds: 3600,
    maxRemovalShare: 0.25,
    accounts: [
      { provider: "aws", account: A, regions: [REGION], endpoint: simA.url },
      { provider: "aws", account: B, regions: [REGION], endpoint: simB.url },
      { provider: "onprem", file: onpremFile },
    ],
  });
  store = new InventoryStore(await new Kvm(t.running.nc).open(Buckets.inventory));
  joinKey = (await t.client.createJoinKey({ reusable: true, labels: { env: "prod", "weft:namespace": "base" } })).key;
}, 60_000);

afterAll(async () => {
  for (const a of agents) await a.nc.close().catch(() => {});
  await t?.stop();
  await simA?.close();
  await simB?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("inventory sync", () => {
  it("inventory - a sync stores every account's instances and networks; a second sync writes nothing; overlapping CIDRs are reported", async () => {
    // The controller's first periodic sync starts with it; this one runs after it.
    const first = await t.client.syncInventory();
    for (const [p, acct, n] of [["aws", A, 6], ["aws", B, 4], ["onprem", "dc-lab", 2]] as const) {
      const s = statusOf(first, p, acct);
      expect([s.result, s.complete, s.counts.instances, s.counts.networks, s.issues], `${p}:${acct} sync`).toEqual(["ok", true, n, 1, []]);
    }
    const key = instanceKey("aws", A, iid("a", 1));
    const rev = (await store.kv.get(key))?.revision;
    const second = await t.client.syncInventory();
    for (const s of second.accounts) expect(s.changes, `${s.provider}:${s.account} second sync changes`).toEqual({ added: 0, updated: 0, deleted: 0 });
    expect((await store.kv.get(key))?.revision, "an unchanged instance is not rewritten").toBe(rev);

    const view = await t.client.inventory();
    expect(view.instances.length, "instances listed").toBe(12);
    expect(view.instances.find((i) => i.id === "h1.dc-lab")?.tags, "on-prem host with a dotted id").toEqual({ role: "db" });
    expect(view.overlaps.map((o) => [[o.a.network, o.b.network].sort().join("/"), o.a.cidr, o.b.cidr, o.sameSite].join(" ")), "overlap of the on-prem LAN and VPC a").toEqual(["lan/vpc-0a 10.0.0.0/16 10.0.0.0/16 false"]);
    expect(view.siteRoutes.find((r) => r.site === "aws:vpc-0b")?.cidrs, "site route of an unbound VPC").toEqual(["10.2.0.0/16"]);
    const onprem = view.siteRoutes.find((r) => r.site === "dc-lab");
    expect(onprem?.conflicts, "the on-prem LAN's site is the one its file declares; the overlapping CIDR is a conflict, not merged").toEqual(["10.0.0.0/16"]);
    // It overlaps another site's network: remapped to a prefix of the pool, not withheld.
    expect(onprem?.withheld, "not withheld").toEqual([]);
    expect(onprem?.remaps?.map((m) => m.cidr), "remapped").toEqual(["10.0.0.0/16"]);
    expect(onprem?.remaps?.[0]?.remapped, "a /16 of the pool 100.112.0.0/12").toMatch(/^100\.(11[2-9]|12[0-7])\.0\.0\/16$/);
  });

  it("inventory - store: a binding survives a sync that changes the instance; an instance is found without its account", async () => {
    const nodeId = await enrollOn({ provider: "aws", account: A, id: iid("a", 1) });
    simA.store.retag(iid("a", 1), { role: "api" });
    const r = await t.client.syncInventory();
    expect(statusOf(r, "aws", A).changes.updated, "retagged instance rewritten").toBe(1);
    const got = await store.instance("aws", undefined, iid("a", 1));
    expect([got?.tags.role, got?.boundNode, got?.account], "record after the sync").toEqual(["api", nodeId, A]);
    expect((await t.client.getNode(nodeId)).labels["cloud.tag.role"], "label from the tag").toBe("api");
  });

  it("inventory - tag changes move the node's labels and identity, in the node and the peer record, only on change", async () => {
    const nodeId = await enrollOn({ provider: "aws", account: A, id: iid("a", 2) });
    await t.client.syncInventory();
    const before = await t.client.getNode(nodeId);
    expect(before.identity?.spiffeId, "identity from the join key before identity tags").toBe("spiffe://weft.internal/ns/base/sa/default");
    simA.store.retag(iid("a", 2), { "weft:namespace": "shop", "weft:serviceaccount": "api", team: "payments" });
    const r = await t.client.syncInventory();
    expect(statusOf(r, "aws", A).relabelled, "relabelled").toContain(nodeId);
    const node = await t.client.getNode(nodeId);
    expect(node.identity?.spiffeId, "identity from the tags").toBe("spiffe://weft.internal/ns/shop/sa/api");
    expect([node.labels.env, node.labels["cloud.tag.team"], node.labels["cloud.instance"]], "labels").toEqual(["prod", "payments", iid("a", 2)]);
    const peer = PeerRecord.parse((await (await new Kvm(t.running.nc).open(Buckets.peers)).get(nodeId))?.json());
    expect(peer.identity, "the peer record carries the new identity, so every datapath follows").toEqual(node.identity);
    const again = await t.client.syncInventory();
    expect(statusOf(again, "aws", A).relabelled, "no change, no relabel").toEqual([]);
  });

  it("inventory - a stopped instance's node is reported and kept", async () => {
    const nodeId = await enrollOn({ provider: "aws", account: A, id: iid("a", 3) });
    simA.store.setState(iid("a", 3), "stopped");
    const r = await t.client.syncInventory();
    expect(statusOf(r, "aws", A).stopped, "stopped").toEqual([{ nodeId, instance: iid("a", 3), state: "stopped" }]);
    expect(await nodeExists(nodeId), "node of a stopped instance").toBe(true);
  });

  it("inventory - auto-revoke: a terminated instance's node is deleted and its NATS credential revoked", async () => {
    const nodeId = await enrollOn({ provider: "aws", account: A, id: iid("a", 4) });
    const agent = agents.at(-1)!;
    const closed = agent.nc.closed();
    await t.client.syncInventory();
    simA.store.setState(iid("a", 4), "terminated");
    const started = Date.now();
    const r = await t.client.syncInventory();
    const s = statusOf(r, "aws", A);
    expect(s.removed.map((x) => [x.nodeId, x.reason]), "removed").toEqual([[nodeId, "terminated"]]);
    expect(s.removed[0]?.evidence, "evidence").toMatch(/terminated/);
    expect(await nodeExists(nodeId), "node after removal").toBe(false);
    const err = await Promise.race([closed, new Promise((r) => setTimeout(() => r("timeout"), 3000))]);
    expect(String(err), "the agent's NATS connection is closed by the server, refusing its credential").toMatch(/Authentication Revoked|Authorization Violation/i);
    expect(Date.now() - started, "removal took (ms)").toBeLessThan(5000);
    expect((await store.instance("aws", A, iid("a", 4)))?.boundNode, "binding dropped").toBeUndefined();
  });

  it("inventory - a failed fetch and a partial one remove nothing; the next complete one does", async () => {
    const nodeId = await enrollOn({ provider: "aws", account: A, id: iid("a", 5) });
    await t.client.syncInventory();
    simA.store.setState(iid("a", 5), "terminated");

    simA.faults.add({ kind: "auth", count: -1 });
    const failed = statusOf(await t.client.syncInventory(), "aws", A);
    simA.faults.clear();
    expect([failed.result, failed.error?.code, failed.removed], "refused credentials").toEqual(["failed", "auth", []]);
    expect(await nodeExists(nodeId), "node after a failed fetch").toBe(true);
    expect((await store.instance("aws", A, iid("a", 5)))?.state, "stored instance untouched by a failed fetch").toBe("running");

    simA.faults.add({ kind: "server-error", count: -1, operation: "DescribeInstances" });
    const partial = statusOf(await t.client.syncInventory(), "aws", A);
    simA.faults.clear();
    expect([partial.result, partial.complete, partial.removed], "instances not listed: partial").toEqual(["partial", false, []]);
    expect(partial.issues[0]?.scope, "issue").toMatch(/DescribeInstances/);
    expect(await nodeExists(nodeId), "node after a partial fetch").toBe(true);
    expect(await store.instance("aws", A, iid("a", 6)), "instances absent from a partial listing are kept").toBeDefined();

    const complete = statusOf(await t.client.syncInventory(), "aws", A);
    expect(complete.removed.map((x) => x.nodeId), "a complete listing removes it").toEqual([nodeId]);
  }, 60_000);

  it("inventory - at most maxRemovalShare of an account's bound nodes go per cycle; the rest are held back, reported, removed later", async () => {
    const nodes: string[] = [];
    for (let n = 1; n <= 4; n++) nodes.push(await enrollOn({ provider: "aws", account: B, id: iid("b", n) }));
    await t.client.syncInventory();
    for (let n = 1; n <= 3; n++) simB.store.setState(iid("b", n), "terminated");
    const first = statusOf(await t.client.syncInventory(), "aws", B);
    expect(first.removed.length, "removed in cycle 1 (4 bound × 0.25)").toBe(1);
    expect(first.heldBack.length, "held back in cycle 1").toBe(2);
    expect(first.heldBackReason, "reason").toMatch(/maxRemovalShare 0.25 of 4 bound nodes allows 1/);
    const second = statusOf(await t.client.syncInventory(), "aws", B);
    const third = statusOf(await t.client.syncInventory(), "aws", B);
    expect([second.removed.length, third.removed.length, third.heldBack.length], "later cycles").toEqual([1, 1, 0]);
    expect(await Promise.all(nodes.map(nodeExists)), "nodes left").toEqual([false, false, false, true]);
  }, 60_000);

  it("inventory - a listing suddenly empty holds back every removal and keeps the records", async () => {
    const nodeId = await enrollOn({ provider: "onprem", account: "dc-lab", id: "h1.dc-lab" }, joinKey, "dc-lab");
    await t.client.syncInventory();
    await writeFile(onpremFile, ONPREM("  []\n").replace("instances:\n  []", "instances: []"));
    const s = statusOf(await t.client.syncInventory(), "onprem", "dc-lab");
    expect([s.result, s.removed, s.heldBack.map((h) => h.nodeId)], "empty listing").toEqual(["ok", [], [nodeId]]);
    expect(s.issues.map((i) => i.code), "issue").toContain("suspicious_empty");
    expect(s.heldBackReason, "reason").toMatch(/listed 2 instances last time and none now/);
    expect(await nodeExists(nodeId), "node").toBe(true);
    expect(await store.instance("onprem", "dc-lab", "h2.dc-lab"), "records of an empty listing are kept").toBeDefined();
    await writeFile(onpremFile, ONPREM(ONPREM_HOSTS));
    const back = statusOf(await t.client.syncInventory(), "onprem", "dc-lab");
    expect([back.heldBack, back.issues], "listed again").toEqual([[], []]);
  });

  it("inventory - a node tagged weft:gateway gets its site's routes in its peer record, the overlapping one remapped; untagged, it loses them", async () => {
    simA.store.addNetwork({ id: "vpc-0c", name: "c-main", region: REGION, cidrs: ["10.5.0.0/16"], subnets: [] });
    simA.store.addInstance({ id: iid("c", 1), name: "c1", region: REGION, network: "vpc-0c", privateIp: "10.5.0.10", tags: {} });
    await t.client.syncInventory();
    const gw = await enrollOn({ provider: "aws", account: A, id: iid("c", 1) }, joinKey, "aws-gw");
    const euGateway = await enrollOn({ provider: "aws", account: A, id: iid("a", 6) }, joinKey, "aws-eu");
    simA.store.retag(iid("c", 1), { "weft:gateway": "true" });
    simA.store.retag(iid("a", 6), { "weft:gateway": "true" });
    await t.client.syncInventory();
    const peers = await new Kvm(t.running.nc).open(Buckets.peers);
    const routesOf = async (nodeId: string) => PeerRecord.parse((await peers.get(nodeId))?.json()).siteRoutes;
    // The first publication waits 1.5 heartbeats after the controller started (liveness first).
    expect(await eventually(async () => ((await routesOf(gw))?.length ? await routesOf(gw) : undefined), 15_000, 100), "gateway's peer record").toEqual(["10.5.0.0/16"]);
    const view = await t.client.inventory();
    const site = (name: string) => view.siteRoutes.find((r) => r.site === name);
    expect([site("aws-gw")?.gateway?.nodeId, site("aws-gw")?.advertised], "aws-gw in the view").toEqual([gw, ["10.5.0.0/16"]]);
    // aws-eu holds vpc-0a (10.0.0.0/16, overlapping the on-prem LAN's site) and vpc-0b (account B's node there).
    const remapped = site("aws-eu")?.remaps?.find((m) => m.cidr === "10.0.0.0/16")?.remapped;
    expect(remapped, "aws-eu's overlapping CIDR gets a prefix of the pool").toMatch(/^100\.(11[2-9]|12[0-7])\.0\.0\/16$/);
    expect([site("aws-eu")?.gateway?.nodeId, site("aws-eu")?.advertised, site("aws-eu")?.withheld], "aws-eu: the overlapping CIDR advertised remapped, the other as it is").toEqual([euGateway, [remapped, "10.2.0.0/16"], []]);
    expect(await eventually(() => routesOf(euGateway), 5_000, 100), "aws-eu's gateway advertises the remapped prefix and the CIDR that overlaps nothing").toEqual([remapped, "10.2.0.0/16"]);
    const remapsOf = async (nodeId: string) => PeerRecord.parse((await peers.get(nodeId))?.json()).siteRemaps;
    expect(await remapsOf(euGateway), "and tells its agent what to translate").toEqual([{ cidr: "10.0.0.0/16", remapped }]);

    simA.store.retag(iid("c", 1), { "weft:gateway": null });
    await t.client.syncInventory();
    expect(await eventually(async () => ((await routesOf(gw)) === undefined ? true : undefined), 5_000, 100), "routes withdrawn once the tag is gone").toBe(true);
  }, 60_000);
});
