import { describe, expect, it } from "vitest";
import { decideReleases, referencedIdentities, type IdentityRecord } from "./reaper.js";

const T0 = Date.parse("2030-01-01T00:00:00Z");
const at = (s: number) => new Date(T0 + s * 1000);
const rec = (id: number, extra: Partial<IdentityRecord["value"]> = {}, revision = 1): IdentityRecord => ({ value: { id, spiffeId: `spiffe://weft.internal/ns/shop/sa/s${id}`, createdAt: at(0).toISOString(), ...extra }, revision });
const GRACE = 600_000;

describe("identity reaper", () => {
  it("reaper - references: node identities, workload identities, and recently dropped ones until their time runs out", () => {
    const nodes = [
      { identity: { id: 300, spiffeId: "x" }, workloads: [{ name: "w", address: "100.80.0.1", identity: { id: 301, spiffeId: "y" } }] },
      { recentIdentities: [{ identity: { id: 302, spiffeId: "z" }, until: at(60).toISOString() }, { identity: { id: 303, spiffeId: "q" }, until: at(-1).toISOString() }] },
    ];
    expect([...referencedIdentities(nodes, at(0))].sort(), "referenced").toEqual([300, 301, 302]);
  });

  it("reaper - unreferenced is marked, released only after the whole grace, and a reference takes the mark off", () => {
    const identities = [rec(300), rec(301, { unreferencedSince: at(-599).toISOString() }), rec(302, { unreferencedSince: at(-600).toISOString() }), rec(303, { unreferencedSince: at(-9999).toISOString() })];
    const plan = decideReleases({ identities, tombstones: [], referenced: new Set([303]), now: at(0), graceMs: GRACE });
    expect(plan.mark.map((r) => r.value.id), "mark").toEqual([300]);
    expect(plan.release.map((r) => r.value.id), "release: unreferenced for the grace").toEqual([302]);
    expect(plan.unmark.map((r) => r.value.id), "unmark: referenced again").toEqual([303]);
  });

  it("reaper - a released number stays a tombstone for another grace; reserved numbers are never marked", () => {
    const tombstones = [rec(310, { releasedAt: at(-601).toISOString() }), rec(311, { releasedAt: at(-10).toISOString() })];
    const plan = decideReleases({ identities: [rec(3)], tombstones, referenced: new Set(), now: at(0), graceMs: GRACE });
    expect(plan.forget.map((r) => r.value.id), "forget").toEqual([310]);
    expect(plan.mark, "reserved").toEqual([]);
  });
});
