/**
 * The peer record as a pure function of the node record: every field an agent reads is derived
 * (none is kept only in the peer record), the result is a valid PeerRecord, comparison ignores
 * updatedAt and field order, and state older controllers kept only in peer records is adopted
 * into the node record once.
 */
import { NodeRecord, PeerRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { adoptPeerState, peerRecordOf, samePeerRecord, transportOf } from "./peer-record.js";

const node: NodeRecord = {
  version: 1,
  nodeId: "n-00000000000000a1",
  name: "web-1",
  site: "paris",
  siteSource: "join-key",
  wireguardPublicKey: "mCxMPJ0zJCGk0c3lAUr5Lp4FvbDRWsJ1pP3tqJcBq0o=",
  natsPublicKey: "UDXU4RCSJNZOIQHZNWXHXMI2N7JBDDM7VQ6TQMVCKNDR2YUZEJAA5YAB",
  overlayAddress: "100.64.0.7",
  endpoints: { private: "10.0.0.7:51820", public: "203.0.113.7:51820" },
  labels: { tier: "web", "cloud.provider": "aws", "cloud.region": "eu-west-1", "cloud.account": "111111111111", "cloud.instance": "i-0abc", "cloud.tag.owner": "alice@example.com" },
  instance: { provider: "aws", account: "111111111111", id: "i-0abc" },
  identity: { id: 300, spiffeId: "spiffe://weft.internal/ns/shop/sa/web" },
  workloadPrefix: "100.80.0.0/28",
  joinKeyId: "0123456789ab",
  enrolledAt: "2025-01-01T00:00:00.000Z",
  workloads: [{ name: "api-1", address: "100.80.0.1", identity: { id: 301, spiffeId: "spiffe://weft.internal/ns/shop/sa/api" } }],
  siteRoutes: ["10.1.0.0/16", "203.0.113.0/24", "100.97.0.0/16"],
  explicitSiteRoutes: ["203.0.113.0/24"],
  siteRemaps: [{ cidr: "10.2.0.0/16", remapped: "100.97.0.0/16" }],
  sessionEpoch: "00112233445566ff",
};
const how = { plaintextSites: ["paris"], updatedAt: "2025-02-02T00:00:00.000Z" };

describe("peer record derivation", () => {
  it("peer-record - every field a peer record carries comes from the node record and the config", () => {
    const peer = peerRecordOf(node, how);
    expect(PeerRecord.safeParse(peer).success, `valid PeerRecord: ${JSON.stringify(PeerRecord.safeParse(peer).error?.issues)}`).toBe(true);
    expect(Object.keys(peer).sort(), "a full node record fills every peer record field").toEqual(Object.keys(PeerRecord.shape).sort());
    expect(peer, "derived").toEqual({
      version: 1,
      nodeId: node.nodeId,
      name: "web-1",
      site: "paris",
      wireguardPublicKey: node.wireguardPublicKey,
      overlayAddress: "100.64.0.7",
      identity: node.identity,
      allowedIps: ["100.64.0.7/32", "100.80.0.0/28"],
      siteRoutes: ["10.1.0.0/16", "203.0.113.0/24", "100.97.0.0/16"],
      explicitSiteRoutes: ["203.0.113.0/24"],
      siteRemaps: node.siteRemaps,
      endpoints: node.endpoints,
      sessionEpoch: "00112233445566ff",
      workloadPrefix: "100.80.0.0/28",
      workloads: node.workloads,
      sameSiteTransport: "vxlan",
      cloud: "aws",
      labels: { tier: "web", "cloud.provider": "aws", "cloud.region": "eu-west-1" },
      updatedAt: how.updatedAt,
    });
  });

  it("peer-record - cloud tags, the account and the instance id stay in the node record", () => {
    const peer = peerRecordOf(node, how);
    const leaked = Object.keys(peer.labels ?? {}).filter((k) => k.startsWith("cloud.tag.") || k === "cloud.account" || k === "cloud.instance");
    expect(leaked, "labels every agent would see").toEqual([]);
    expect(JSON.stringify(peer).includes("alice@example.com"), "a tag value in the peer record").toBe(false);
  });

  it("peer-record - optional state is left out when the node has none; a prefix always carries a workload list", () => {
    const { workloads: _w, siteRoutes: _s, explicitSiteRoutes: _x, siteRemaps: _r, sessionEpoch: _e, identity: _i, instance: _c, ...bare } = node;
    const peer = peerRecordOf({ ...bare, siteRoutes: [] }, { plaintextSites: [], updatedAt: how.updatedAt });
    expect(["identity", "siteRoutes", "siteRemaps", "sessionEpoch", "sameSiteTransport", "cloud"].filter((k) => k in peer), "fields absent").toEqual([]);
    expect(peer.workloads, "workloads of a node with a prefix and none recorded").toEqual([]);
    const { workloadPrefix: _p, ...noPrefix } = bare;
    const old = peerRecordOf(noPrefix, how);
    expect([old.allowedIps, "workloadPrefix" in old, "workloads" in old], "a node without a prefix").toEqual([["100.64.0.7/32"], false, false]);
    expect(
      [transportOf({ site: "paris", siteSource: "join-key" }, ["paris"]), transportOf({ site: "lyon", siteSource: "join-key" }, ["paris"]), transportOf({ site: "paris", siteSource: "request" }, ["paris"]), transportOf({ site: "paris" }, ["paris"])],
      "transport by site: vxlan only in a plaintext site that was vouched for",
    ).toEqual(["vxlan", "wireguard", "wireguard", "wireguard"]);
  });

  it("peer-record - records compare by content: updatedAt and field order aside", () => {
    const a = peerRecordOf(node, how);
    const reordered = Object.fromEntries(Object.entries({ ...a, updatedAt: "2030-01-01T00:00:00.000Z" }).reverse()) as PeerRecord;
    expect(samePeerRecord(a, reordered), "same content").toBe(true);
    expect(samePeerRecord(a, peerRecordOf({ ...node, workloads: [] }, how)), "other workloads").toBe(false);
    expect(samePeerRecord(a, peerRecordOf(node, { ...how, plaintextSites: [] })), "other transport").toBe(false);
  });

  it("peer-record - state only an old peer record holds is adopted into the node record once", () => {
    const { workloads: _w, siteRoutes: _s, sessionEpoch: _e, ...legacy } = node;
    const oldPeer = peerRecordOf(node, how);
    const adopted = adoptPeerState(legacy, oldPeer);
    expect([adopted.workloads, adopted.siteRoutes, adopted.sessionEpoch], "adopted").toEqual([node.workloads, node.siteRoutes, node.sessionEpoch]);
    expect(samePeerRecord(peerRecordOf(adopted, how), oldPeer), "the rebuilt peer record says what the old one said").toBe(true);
    expect(adoptPeerState(node, { ...oldPeer, sessionEpoch: "ffffffffffffffff" }), "a node that has the state keeps its own (same object)").toBe(node);
    expect(adoptPeerState(legacy, undefined), "no peer record: nothing to adopt").toBe(legacy);
    const otherPrefix = adoptPeerState(legacy, { ...oldPeer, workloadPrefix: "100.80.0.16/28" });
    expect(otherPrefix.workloads, "workloads of another prefix are not adopted").toBeUndefined();
    expect(NodeRecord.safeParse(adopted).success, "the adopted record is a valid NodeRecord").toBe(true);
  });
});
