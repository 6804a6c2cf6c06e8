import { describe, expect, it } from "vitest";
import type { Claims } from "./claims.js";
import { AddressAllocator } from "./allocator.js";
import { PrefixAllocator } from "./prefixes.js";

/**
 * The claims the allocators read and make, in memory (what weft-ipam's keys say), each claim taking
 * a turn of the event loop as a store round trip does; `lost` counts claims that found the value taken.
 */
function claimsOf(taken: string[]): Claims & { lost: number } {
  const owned = new Map(taken.map((p) => [p, "n-other"]));
  const claims = {
    lost: 0,
    claimedPrefixes: async () => [...owned.keys()],
    claimedAddresses: async () => new Set(owned.keys()),
    claim: async (_kind: string, value: string, nodeId: string) => {
      await new Promise((r) => setImmediate(r));
      const owner = owned.get(value);
      if (owner !== undefined) {
        claims.lost++;
        return { ok: false as const, owner };
      }
      owned.set(value, nodeId);
      return { ok: true as const };
    },
  };
  return claims as unknown as Claims & { lost: number };
}

describe("ipam allocation", () => {
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

  it("ipam - concurrent allocations in one controller get distinct values without racing each other", async () => {
    const n = 40;
    const addrClaims = claimsOf(["100.64.0.1"]);
    const addresses = new AddressAllocator(addrClaims, "100.64.0.0/16");
    const gotAddrs = await Promise.all(Array.from({ length: n }, (_, i) => addresses.allocate(`n-${i}`)));
    expect(new Set(gotAddrs).size, `distinct addresses of ${n}`).toBe(n);
    expect(gotAddrs.includes("100.64.0.1"), "the address claimed before is not handed out").toBe(false);
    expect(addrClaims.lost, "address claims lost to a concurrent allocation").toBe(0);
    const prefixClaims = claimsOf([]);
    const prefixes = new PrefixAllocator(prefixClaims, "100.80.0.0/12", 28);
    const gotPrefixes = await Promise.all(Array.from({ length: n }, (_, i) => prefixes.allocate(`n-${i}`)));
    expect(new Set(gotPrefixes).size, `distinct prefixes of ${n}`).toBe(n);
    expect(prefixClaims.lost, "prefix claims lost to a concurrent allocation").toBe(0);
  });
});
