/**
 * The pure decisions of applying one account's listing: what is accepted from the listing, which
 * nodes are bound, which stored records a complete listing deletes or marks absent, when a record
 * needs no write, and the status each outcome stores.
 */
import type { InventorySnapshot } from "@weft/cloud";
import type { NodeView } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { acceptListing, accountStatusOf, bindingsOf, failedStatusOf, planRecordCleanup, sameRecord, staleNetworks } from "./listing.js";
import { instanceKey, networkKey, type StoredInstance, type StoredNetwork } from "./store.js";

const A = "111111111111";
const at = "2025-03-01T00:00:00.000Z";
const instance = (id: string, extra: Partial<StoredInstance> = {}): StoredInstance => ({
  provider: "aws",
  account: A,
  id,
  name: id,
  region: "eu-west-1",
  network: "vpc-1",
  state: "running",
  privateIps: ["10.0.0.1"],
  publicIps: [],
  tags: {},
  seenAt: at,
  ...extra,
});
const network = (id: string): StoredNetwork => ({ provider: "aws", account: A, id, name: id, region: "eu-west-1", cidrs: ["10.0.0.0/16"], subnets: [], seenAt: at });
const node = (nodeId: string, instanceRef?: { provider: "aws"; account: string; id: string }) => ({ nodeId, name: nodeId, ...(instanceRef ? { instance: instanceRef } : {}) }) as unknown as NodeView;

describe("inventory listing decisions", () => {
  it("listing - records of another account are skipped, reported, and make the listing incomplete", () => {
    const snap = {
      fetchedAt: at,
      complete: true,
      issues: [],
      instances: [instance("i-1"), instance("i-2", { account: "222222222222" })],
      networks: [network("vpc-1"), { ...network("vpc-2"), account: "222222222222" }],
    } as unknown as InventorySnapshot;
    const got = acceptListing(snap, "aws", A);
    expect([...got.instances.keys()], "instances").toEqual([instanceKey("aws", A, "i-1")]);
    expect([...got.networks.keys()], "networks").toEqual([networkKey("aws", A, "vpc-1")]);
    expect([got.complete, got.issues.map((i) => i.code)], "incomplete, reported").toEqual([false, ["foreign_account"]]);
    expect(got.instances.get(instanceKey("aws", A, "i-1"))?.seenAt, "stamped with the fetch time").toBe(at);
  });

  it("listing - bindings come from stored records of existing nodes, else from the node record's instance", () => {
    const stored = [
      { value: instance("i-1", { boundNode: "n-1" }), revision: 1 },
      { value: instance("i-2", { boundNode: "n-gone" }), revision: 2 },
    ];
    const nodes = [node("n-1"), node("n-2", { provider: "aws", account: A, id: "i-3" }), node("n-3", { provider: "aws", account: "other", id: "i-4" })];
    const got = bindingsOf({ stored, nodes, provider: "aws", account: A });
    expect([...got.values()].map((b) => [b.nodeId, b.instanceId]), "bindings").toEqual([
      ["n-1", "i-1"],
      ["n-2", "i-3"],
    ]);
  });

  it("listing - a complete listing deletes unbound records it no longer has and marks bound ones absent once", () => {
    const k = (id: string) => instanceKey("aws", A, id);
    const stored = new Map([
      [k("i-listed"), { value: instance("i-listed"), revision: 1 }],
      [k("i-free"), { value: instance("i-free"), revision: 2 }],
      [k("i-bound"), { value: instance("i-bound"), revision: 3 }],
      [k("i-bound-by-record"), { value: instance("i-bound-by-record", { boundNode: "n-9" }), revision: 4 }],
      [k("i-dead-binding"), { value: instance("i-dead-binding", { boundNode: "n-deleted" }), revision: 5 }],
      [k("i-marked"), { value: instance("i-marked", { absentSince: at }), revision: 6 }],
    ]);
    const got = planRecordCleanup({
      stored,
      listed: new Map([[k("i-listed"), instance("i-listed")]]),
      boundKeys: new Set([k("i-bound"), k("i-marked")]),
      nodeExists: (id) => id === "n-9",
    });
    expect(got.markAbsent, "bound and not yet marked").toEqual([k("i-bound"), k("i-bound-by-record")]);
    expect(got.remove, "unbound, with the revision the delete is conditional on").toEqual([
      { key: k("i-free"), revision: 2 },
      { key: k("i-dead-binding"), revision: 5 },
    ]);
    expect(staleNetworks([network("vpc-1"), network("vpc-2")], new Map([[networkKey("aws", A, "vpc-1"), network("vpc-1")]])), "stale networks").toEqual([networkKey("aws", A, "vpc-2")]);
  });

  it("listing - a record needs no write when only seenAt differs and the stored one is fresh enough", () => {
    const now = Date.parse(at) + 60_000;
    const same = sameRecord<StoredInstance>(now, 15 * 60_000);
    const reordered = Object.fromEntries(Object.entries(instance("i-1")).reverse()) as StoredInstance;
    expect(same(instance("i-1"), { ...reordered, seenAt: "2025-03-01T00:01:00.000Z" }), "seenAt and field order aside").toBe(true);
    expect(same(instance("i-1"), instance("i-1", { tags: { a: "b" } })), "a tag changed").toBe(false);
    expect(sameRecord<StoredInstance>(Date.parse(at) + 16 * 60_000, 15 * 60_000)(instance("i-1"), instance("i-1")), "seenAt too old: refreshed").toBe(false);
  });

  it("listing - the status counts what stays bound and keeps the baseline of the last complete listing", () => {
    const listing = acceptListing({ fetchedAt: at, complete: false, issues: [], instances: [instance("i-1")], networks: [] } as unknown as InventorySnapshot, "aws", A);
    const removal = { nodeId: "n-1", instance: "i-9", reason: "terminated" as const, evidence: "state terminated" };
    const base = { provider: "aws" as const, account: A, fetchedAt: at, listing, issues: [], baseline: 7, bound: 3, changes: { added: 1, updated: 0, deleted: 0 }, heldBack: [], heldBackReason: "share", stopped: [], relabelled: [], syncedAt: at };
    const partial = accountStatusOf({ ...base, evidence: false, removed: [removal] });
    expect([partial.result, partial.counts.bound, partial.lastCompleteInstances, "heldBackReason" in partial], "partial").toEqual(["partial", 2, 7, false]);
    const complete = accountStatusOf({ ...base, listing: { ...listing, complete: true }, evidence: true, removed: [], heldBack: [removal] });
    expect([complete.result, complete.lastCompleteInstances, complete.heldBackReason], "complete").toEqual(["ok", 1, "share"]);
    const failed = failedStatusOf({ provider: "aws", account: A, code: "auth", message: "fetch: refused", prev: complete, syncedAt: at });
    expect([failed.result, failed.error, failed.counts, failed.lastCompleteInstances, failed.lastSuccessAt], "failed keeps what was").toEqual(["failed", { code: "auth", message: "fetch: refused" }, complete.counts, 1, at]);
  });
});
