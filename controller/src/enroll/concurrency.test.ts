/**
 * Many agents enrolling at once against a real controller: a fleet booting with
 * one reusable key all get in with distinct addresses, and a tiny overlay range
 * is shared out exactly, with nothing stored for the agents that found it full.
 */
import { Kvm } from "@nats-io/kv";
import { Buckets, EnrollResponse, generateKeyPair, type RawResponse } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentIdentity, claimsOf, startTestController, storedState, type TestController } from "../testing.js";

let wide: TestController;
let tiny: TestController;

beforeAll(async () => {
  [wide, tiny] = await Promise.all([startTestController(), startTestController({ overlay: { cidr: "100.64.0.0/29" } })]);
});
afterAll(async () => {
  await Promise.all([wide?.stop(), tiny?.stop()]);
});

async function enrollMany(t: TestController, joinKey: string, n: number): Promise<{ bodies: Record<string, unknown>[]; results: RawResponse[] }> {
  const bodies = Array.from({ length: n }, () => agentIdentity(joinKey, generateKeyPair().publicKey).body);
  const results = await Promise.all(bodies.map((b) => t.client.raw("POST", "/v1/enroll", JSON.stringify(b))));
  return { bodies, results };
}

function tally(results: RawResponse[]): string {
  const counts = new Map<string, number>();
  for (const r of results) {
    const k = r.status === 201 ? "201" : `${r.status} ${(r.body as { error?: string } | undefined)?.error ?? r.text.slice(0, 80)}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return JSON.stringify(Object.fromEntries(counts));
}

describe("concurrent enrollment", () => {
  it("enroll - 72 agents with one reusable key at once all succeed with distinct addresses and matching claims", async () => {
    const n = 72;
    const key = await wide.client.createJoinKey({ reusable: true });
    const { results } = await enrollMany(wide, key.key, n);
    expect(results.every((r) => r.status === 201), `statuses: got ${tally(results)}, want ${n} × 201`).toBe(true);

    const responses = results.map((r) => EnrollResponse.parse(r.body));
    const addresses = new Set(responses.map((r) => r.overlayAddress));
    expect(addresses.size, `distinct overlay addresses: got ${addresses.size}, want ${n}`).toBe(n);
    const ids = new Set(responses.map((r) => r.nodeId));
    expect(ids.size, `distinct node ids: got ${ids.size}, want ${n}`).toBe(n);
    const prefixes = new Set(responses.map((r) => r.workloadPrefix));
    expect(prefixes.size, `distinct workload prefixes: got ${prefixes.size}, want ${n}`).toBe(n);
    const outside = responses.filter((r) => r.workloadCidr !== "100.80.0.0/12" || !r.workloadPrefix?.startsWith("100.8") || !r.workloadPrefix.endsWith("/24"));
    expect(outside.map((r) => r.workloadPrefix), "workload prefixes outside 100.80.0.0/12 or not /24").toEqual([]);

    const state = await storedState(wide);
    expect(state.nodes.length, `GET /v1/nodes: got ${state.nodes.length} nodes, want ${n}`).toBe(n);
    expect(new Set(state.nodes.map((x) => x.overlayAddress)), "listed addresses = returned addresses").toEqual(addresses);
    expect(new Set(state.nodes.map((x) => x.workloadPrefix)), "listed workload prefixes = returned ones").toEqual(prefixes);
    expect(state.claims, "ipam claims = the nodes' addresses, prefixes, keys and names").toEqual(claimsOf(state.nodes));
    expect(state.peers, "weft-peers keys = the node ids").toEqual([...ids].sort());
    const info = state.keys.find((k) => k.id === key.id);
    expect(`${info?.state} uses=${info?.uses}`, "join key after the burst").toBe(`active uses=${n}`);
  });

  it("enroll - 20 agents racing for a /29 (6 addresses): exactly 6 succeed, the rest get 503 addresses_exhausted, losers store nothing", async () => {
    const key = await tiny.client.createJoinKey({ reusable: true });
    const { bodies, results } = await enrollMany(tiny, key.key, 20);
    const won = results.filter((r) => r.status === 201);
    const lost = results.filter((r) => r.status !== 201);
    expect(won.length, `winners: got ${tally(results)}, want 6 × 201`).toBe(6);
    for (const r of lost) {
      expect(r.status, `loser: got ${r.status} ${r.text}, want 503`).toBe(503);
      expect((r.body as { error?: string }).error, "loser error code").toBe("addresses_exhausted");
      // A 5xx tells a caller only to retry, with a reference; the range is in the controller's log.
      expect((r.body as { message?: string }).message, "loser message").toMatch(/^the controller cannot take this request now; retry \(reference ref-[0-9a-f]+\)$/);
    }

    const addresses = won.map((r) => EnrollResponse.parse(r.body).overlayAddress).sort();
    expect(addresses, "the six host addresses of the /29, each once").toEqual(["100.64.0.1", "100.64.0.2", "100.64.0.3", "100.64.0.4", "100.64.0.5", "100.64.0.6"]);

    const state = await storedState(tiny);
    expect(state.nodes.length, `GET /v1/nodes: got ${state.nodes.length}, want 6`).toBe(6);
    expect(state.claims, "ipam claims are exactly the winners'").toEqual(claimsOf(state.nodes));
    const loserNames = bodies.filter((_, i) => results[i]?.status !== 201).map((b) => String(b["name"]));
    const listedNames = new Set(state.nodes.map((x) => x.name));
    expect(loserNames.filter((nm) => listedNames.has(nm)), "losers listed as nodes").toEqual([]);
    expect(state.peers.length, "weft-peers records").toBe(6);
    const info = state.keys.find((k) => k.id === key.id);
    expect(info?.uses, "join key uses (losers do not consume it)").toBe(6);

    // Full, but still serving: a request for a free address fails cleanly, a deleted node's address is reused.
    const full = await tiny.client.raw("POST", "/v1/enroll", JSON.stringify(agentIdentity(key.key, generateKeyPair().publicKey).body));
    expect(full.status, `enroll into a full range: got ${full.status} ${full.text}, want 503`).toBe(503);
    const victim = state.nodes[0]!;
    await tiny.client.deleteNode(victim.nodeId);
    const again = await tiny.client.raw("POST", "/v1/enroll", JSON.stringify(agentIdentity(key.key, generateKeyPair().publicKey).body));
    expect(again.status, `enroll after a delete: got ${again.status} ${again.text}, want 201`).toBe(201);
    expect(EnrollResponse.parse(again.body).overlayAddress, "the freed address is handed out again").toBe(victim.overlayAddress);
    const ipamKeys: string[] = [];
    for await (const k of await (await new Kvm(tiny.running.nc).open(Buckets.ipam)).keys("addr.>")) ipamKeys.push(k);
    expect(ipamKeys.length, `addr claims after delete + enroll: got ${ipamKeys.length}, want 6`).toBe(6);
  });
});
