/**
 * The registry as the one writer of node and peer records, against a real controller: a change
 * to the node record rebuilds the peer record in the same step and writes nothing when nothing
 * changed; two registries (two controllers) changing one node at once leave a peer record built
 * from the final node record; records an older controller wrote (workloads, site routes and epoch
 * only in the peer record) are adopted into the node record at start, with no change agents see.
 */
import { randomBytes } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import { Buckets, NodeRecord, PeerRecord, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AddressAllocator } from "../ipam/allocator.js";
import { Claim, Claims } from "../ipam/claims.js";
import { PrefixAllocator } from "../ipam/prefixes.js";
import { RecordStore } from "../store/kv.js";
import { enrollAgent, startTestController, type EnrolledAgent, type TestController } from "../testing.js";
import { Liveness } from "./liveness.js";
import { peerRecordOf, samePeerRecord } from "./peer-record.js";
import { NodeRegistry } from "./registry.js";

let t: TestController;
let nodes: KV;
let peers: KV;
let ipam: KV;
const agents: EnrolledAgent[] = [];

beforeAll(async () => {
  t = await startTestController();
  const kvm = new Kvm(t.running.nc);
  [nodes, peers, ipam] = await Promise.all([kvm.open(Buckets.nodes), kvm.open(Buckets.peers), kvm.open(Buckets.ipam)]);
});
afterAll(async () => {
  for (const a of agents) await a.nc.close().catch(() => {});
  await t?.stop();
});

async function enroll(target: TestController = t): Promise<string> {
  const key = await target.client.createJoinKey({});
  const a = await enrollAgent(target, key.key, generateKeyPair().publicKey);
  agents.push(a);
  return a.enrolled.nodeId;
}

/** A peer store whose changes wait for `gate` first: a controller slow to write the peer record. */
class SlowPeers extends RecordStore<typeof PeerRecord> {
  constructor(
    kv: KV,
    private readonly gate: Promise<void>,
  ) {
    super(kv, PeerRecord, Buckets.peers);
  }
  override async change(...args: Parameters<RecordStore<typeof PeerRecord>["change"]>) {
    await this.gate;
    return super.change(...args);
  }
}

/** A store whose puts wait for `gate` (a slow write), or fail once it is rejected (a failed one). */
class GatedPuts<S extends typeof NodeRecord | typeof PeerRecord> extends RecordStore<S> {
  constructor(
    kv: KV,
    schema: S,
    bucket: string,
    private readonly gate: Promise<void>,
  ) {
    super(kv, schema, bucket);
  }
  override async put(...args: Parameters<RecordStore<S>["put"]>) {
    await this.gate;
    return super.put(...args);
  }
}

/** A registry of its own on the controller's buckets: a second controller's. */
function secondRegistry(
  peerStore = new RecordStore(peers, PeerRecord, Buckets.peers),
  revokeCredential: (natsPublicKey: string) => Promise<unknown> = async () => undefined,
  nodeStore = new RecordStore(nodes, NodeRecord, Buckets.nodes),
): NodeRegistry {
  const claims = new Claims(new RecordStore(ipam, Claim, Buckets.ipam));
  return new NodeRegistry({
    nodes: nodeStore,
    peers: peerStore,
    claims,
    allocator: new AddressAllocator(claims, t.running.config.overlay.cidr),
    prefixes: new PrefixAllocator(claims, t.running.config.overlay.workloadCidr, t.running.config.overlay.workloadPrefixLength),
    liveness: new Liveness(15_000),
    log: pino({ level: "silent" }),
    revokeCredential,
    plaintextSites: t.running.config.overlay.plaintextSites,
  });
}

/** Whether `key` holds a value (a deleted key reads as its delete marker). */
async function present(kv: KV, key: string): Promise<boolean> {
  return (await kv.get(key))?.operation === "PUT";
}

async function records(nodeId: string, kvs: { nodes: KV; peers: KV } = { nodes, peers }) {
  const [n, p] = await Promise.all([kvs.nodes.get(nodeId), kvs.peers.get(nodeId)]);
  return { node: NodeRecord.parse(n?.json()), nodeRevision: n!.revision, peer: PeerRecord.parse(p?.json()), peerRevision: p!.revision };
}

describe("node registry", () => {
  it("registry - a node record change rebuilds the peer record in the same step; no change writes nothing", async () => {
    const id = await enroll();
    const registry = secondRegistry();
    const got = await registry.updateNode(id, (n) => ({ ...n, siteRoutes: ["10.7.0.0/16"], sessionEpoch: "0123456789abcdef" }));
    expect(got.outcome, "outcome").toBe("updated");
    const after = await records(id);
    expect([after.peer.siteRoutes, after.peer.sessionEpoch], "peer record follows the node record").toEqual([["10.7.0.0/16"], "0123456789abcdef"]);
    expect(samePeerRecord(after.peer, peerRecordOf(after.node, { plaintextSites: [], updatedAt: "" })), "peer record = derived from node record").toBe(true);
    const again = await registry.updateNode(id, () => undefined);
    const still = await records(id);
    expect([again.outcome, still.nodeRevision, still.peerRevision], "a no-op writes neither record").toEqual(["unchanged", after.nodeRevision, after.peerRevision]);
    expect((await registry.updateNode("n-0000000000000000", () => undefined)).outcome, "an unknown node").toBe("gone");
  });

  it("registry - add sends the peer record without waiting for the node record; when either write fails, neither record stays", async () => {
    const enrolled = (await records(await enroll())).node;
    const fresh = (): NodeRecord => ({ ...enrolled, nodeId: `n-${randomBytes(8).toString("hex")}` });
    const gated = (schema: "node" | "peer", gate: Promise<void>) =>
      schema === "node" ? secondRegistry(undefined, undefined, new GatedPuts(nodes, NodeRecord, Buckets.nodes, gate)) : secondRegistry(new GatedPuts(peers, PeerRecord, Buckets.peers, gate));

    let open!: () => void;
    const slow = fresh();
    const adding = gated("node", new Promise<void>((r) => (open = r))).add(slow);
    for (let i = 0; i < 200 && !(await present(peers, slow.nodeId)); i++) await new Promise((r) => setTimeout(r, 5));
    expect([await present(peers, slow.nodeId), await present(nodes, slow.nodeId)], "peer record stored while the node record's write is still pending").toEqual([true, false]);
    open();
    await adding;
    expect([await present(nodes, slow.nodeId), await present(peers, slow.nodeId)], "both, once the node record is written").toEqual([true, true]);

    for (const failing of ["node", "peer"] as const) {
      const node = fresh();
      const broken = Promise.reject(new Error(`the ${failing} record write failed`));
      broken.catch(() => undefined); // rejected before any write waits for it
      await expect(gated(failing, broken).add(node), `${failing} write failing`).rejects.toThrow(`the ${failing} record write failed`);
      expect([await present(nodes, node.nodeId), await present(peers, node.nodeId)], `after the ${failing} record's write failed: no node record, no peer record`).toEqual([false, false]);
    }
  });

  it("registry - a delete removes the peer record before it revokes the credential; one that fails revoking is completed by a second", async () => {
    const id = await enroll();
    const seen: { peer: boolean; node: boolean }[] = [];
    let fail = true;
    const registry = secondRegistry(undefined, async () => {
      seen.push({ peer: await present(peers, id), node: await present(nodes, id) });
      if (fail) throw new Error("the server did not take the account JWT");
    });
    await expect(registry.delete(id), "the revocation's failure is the delete's").rejects.toThrow(/did not take/);
    expect(seen, "at the revocation: the peer record already gone (agents drop the node), the node record still there").toEqual([{ peer: false, node: true }]);
    expect(await present(nodes, id), "the node record stays, so the delete can be retried").toBe(true);
    expect((await registry.updateNode(id, (n) => ({ ...n, siteRoutes: ["10.9.0.0/16"] }))).outcome, "a change meanwhile").toBe("updated");
    expect(await present(peers, id), "does not bring the peer record back").toBe(false);
    fail = false;
    const deleted = await registry.delete(id);
    expect(deleted.nodeId, "the second delete").toBe(id);
    expect([await present(nodes, id), await present(peers, id)], "both records gone").toEqual([false, false]);
    expect(seen.length, "revoked again").toBe(2);
  });

  it("registry - a controller slow to write the peer record never leaves it older than another controller's node change", async () => {
    const id = await enroll();
    let open!: () => void;
    const slow = secondRegistry(new SlowPeers(peers, new Promise<void>((r) => (open = r))));
    const fast = secondRegistry();
    // The slow one writes the node record, then waits before its peer record.
    const pending = slow.updateNode(id, (n) => ({ ...n, siteRoutes: ["10.1.0.0/16"] }));
    for (let i = 0; i < 200 && (await records(id)).node.siteRoutes === undefined; i++) await new Promise((r) => setTimeout(r, 5));
    // The fast one changes it back: the peer record (never given the routes) already says so.
    await fast.updateNode(id, (n) => {
      const { siteRoutes: _r, ...rest } = n;
      return rest;
    });
    open();
    await pending;
    const end = await records(id);
    expect(end.node.siteRoutes, "node record: the later change").toBeUndefined();
    expect(end.peer.siteRoutes, "peer record: rebuilt from the node record as it ended, not from the slow controller's older one").toBeUndefined();
  });

  it("registry - two registries changing one node at once leave a peer record built from the final node record", async () => {
    const id = await enroll();
    const a = secondRegistry();
    const b = secondRegistry();
    const epochs = Array.from({ length: 12 }, (_, i) => `${i.toString(16).padStart(2, "0")}00000000000000`);
    await Promise.all(
      epochs.map((epoch, i) =>
        (i % 2 === 0 ? a : b).updateNode(id, (n) => ({ ...n, sessionEpoch: epoch, siteRoutes: i % 3 === 0 ? [] : [`10.${i}.0.0/16`] })),
      ),
    );
    const end = await records(id);
    const want = peerRecordOf(end.node, { plaintextSites: [], updatedAt: "" });
    expect(samePeerRecord(end.peer, want), `peer ${JSON.stringify([end.peer.sessionEpoch, end.peer.siteRoutes])} vs node ${JSON.stringify([end.node.sessionEpoch, end.node.siteRoutes])}`).toBe(true);
  });

  it("registry - at start, state an older controller kept only in the peer record is adopted; the peer record stays as agents had it", async () => {
    const other = await startTestController();
    let restarted: TestController | undefined;
    try {
      const id = await enroll(other);
      const kvm = new Kvm(other.running.nc);
      const [n, p] = await Promise.all([kvm.open(Buckets.nodes), kvm.open(Buckets.peers)]);
      const node = NodeRecord.parse((await n.get(id))?.json());
      const prefix = node.workloadPrefix!;
      const base = prefix.slice(0, prefix.lastIndexOf(".") + 1);
      const state = {
        workloads: [{ name: "api-1", address: `${base}1`, identity: node.identity! }],
        siteRoutes: ["10.9.0.0/16"],
        sessionEpoch: "feedfacecafebeef",
      };
      // As an older controller wrote them: the node record without this state, the peer record with it.
      await p.put(id, JSON.stringify(peerRecordOf({ ...node, ...state }, { plaintextSites: [], updatedAt: new Date().toISOString() })));
      const oldPeerRevision = (await p.get(id))!.revision;
      await other.running.stop();
      restarted = await startTestController({}, { stateDir: other.stateDir });
      const kvm2 = new Kvm(restarted.running.nc);
      const after = await records(id, { nodes: await kvm2.open(Buckets.nodes), peers: await kvm2.open(Buckets.peers) });
      expect({ workloads: after.node.workloads, siteRoutes: after.node.siteRoutes, sessionEpoch: after.node.sessionEpoch }, "adopted into the node record").toEqual(state);
      expect(after.peerRevision, "the peer record is not rewritten: it already said this").toBe(oldPeerRevision);
      expect((await restarted.client.getNode(id)).workloads, "the node view shows the workloads").toEqual(state.workloads);
    } finally {
      await restarted?.stop();
      await other.stop().catch(() => {});
    }
  });
});
