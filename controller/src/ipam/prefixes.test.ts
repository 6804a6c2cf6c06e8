import { describe, expect, it } from "vitest";
import type { Claims } from "./claims.js";
import { PrefixAllocator } from "./prefixes.js";

/** The claims the allocator reads and makes, in memory: what weft-ipam's wprefix keys say. */
function claimsOf(taken: string[]): Claims {
  const owned = new Map(taken.map((p) => [p, "n-other"]));
  const claims = {
    claimedPrefixes: async () => [...owned.keys()],
    claim: async (_kind: string, value: string, nodeId: string) => {
      const owner = owned.get(value);
      if (owner !== undefined) return { ok: false as const, owner };
      owned.set(value, nodeId);
      return { ok: true as const };
    },
  };
  return claims as unknown as Claims;
}

describe("workload prefix allocation", () => {
  it("prefixes - the lowest prefix free of claims of this length and of any other", async () => {
    const cases: { taken: string[]; want: string; why: string }[] = [
      { taken: [], want: "100.80.0.0/24", why: "nothing claimed" },
      { taken: ["100.80.0.0/24", "100.80.1.0/24"], want: "100.80.2.0/24", why: "two of this length" },
      { taken: ["100.80.0.0/24", "100.80.2.0/24"], want: "100.80.1.0/24", why: "a hole is reused" },
      { taken: ["100.80.0.0/23"], want: "100.80.2.0/24", why: "a /23 claimed earlier covers two /24s" },
      { taken: ["100.80.1.128/25", "100.80.0.0/24"], want: "100.80.2.0/24", why: "a /25 inside the second /24" },
    ];
    for (const c of cases) {
      const got = await new PrefixAllocator(claimsOf(c.taken), "100.80.0.0/12", 24).allocate("n-new");
      expect(got, `${c.why}: taken ${c.taken.join(", ") || "none"}`).toBe(c.want);
    }
  });

  it("prefixes - a range with every prefix claimed is exhausted", async () => {
    const all = ["100.80.0.0/24", "100.80.1.0/24"];
    await expect(new PrefixAllocator(claimsOf(all), "100.80.0.0/23", 24).allocate("n-new")).rejects.toThrow(/no free \/24 workload prefix/);
  });
});
