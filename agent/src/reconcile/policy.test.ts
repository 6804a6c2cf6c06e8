/**
 * PolicyReconciler (no datapath: datapath.enabled false still records what it was given): starts
 * from the cached policy, applies only newer revisions, the latest of a burst wins, and each
 * applied policy lands in state.json and the status.
 */
import type { NodePolicyRecord } from "@weft/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { loadState } from "../state/store.js";
import { PolicyReconciler } from "./policy.js";
import { enrolledNode, type Node } from "./testing.js";

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.cleanup();
});

const record = (nodeId: string, entries: NodePolicyRecord["entries"]): NodePolicyRecord => ({
  version: 2,
  nodeId,
  localIdentities: [301],
  policies: ["p"],
  defaultDeny: [301],
  entries,
  entryCount: entries.length,
  mapEntries: entries.length,
  compiledAt: "2030-01-01T00:00:00.000Z",
});

describe("reconcile/policy", () => {
  it("policy - starts from the cache, applies only newer revisions, the latest of a burst wins", async () => {
    const nodeId = "n-0000000000000001";
    const cached = { revision: 4, record: record(nodeId, [[300, 301, 6, 443, 443, 1]]) };
    const n = await enrolledNode({ n: 1, cached: { appliedPolicy: cached } });
    nodes.push(n);
    const policy = new PolicyReconciler({ datapath: undefined, state: n.state, status: n.status, log: n.log });
    expect(policy.applied, "applied from the cache").toEqual(cached);

    policy.submit(record(nodeId, []), 3); // older than the cache
    await policy.idle();
    expect(policy.applied.revision, "after an older revision").toBe(4);

    const latest = record(nodeId, [[300, 301, 6, 80, 80, 1], [300, 301, 6, 443, 443, 1]]);
    policy.submit(record(nodeId, []), 5);
    policy.submit(record(nodeId, [[1, 2, 6, 22, 22, 1]]), 6);
    policy.submit(latest, 7);
    await policy.idle();
    expect(policy.applied, "applied").toEqual({ revision: 7, record: latest });
    expect((await loadState(n.dir))?.appliedPolicy, "state.json").toEqual({ revision: 7, record: latest });
    expect([n.status.current.policyRevision, n.status.current.policyEntries], "status revision and entries").toEqual([7, 2]);

    policy.submit(null, 8); // the key was deleted
    await policy.idle();
    expect(policy.applied, "after a delete").toEqual({ revision: 8, record: null });
    expect(n.status.current.policyEntries, "entries after a delete").toBe(0);
  });
});
