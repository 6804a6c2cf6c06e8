/** Loss rules for a site's WAN link (pure part of conditions.ts). */
import { describe, expect, it } from "vitest";
import { LabError } from "./errors.js";
import { lossRules } from "./conditions.js";

describe("lab - conditions", () => {
  it("lab - loss drops a share of what crosses the WAN link, each way; 0 removes it; out of range refused", () => {
    expect(lossRules({ wanInterface: "wan0" }, 0.3), "30 %").toEqual([
      ["-i", "wan0", "-m", "statistic", "--mode", "random", "--probability", "0.3000", "-j", "DROP"],
      ["-o", "wan0", "-m", "statistic", "--mode", "random", "--probability", "0.3000", "-j", "DROP"],
    ]);
    expect(lossRules({ wanInterface: "wan0" }, 0), "none").toEqual([]);
    for (const bad of [-0.1, 1, 2, Number.NaN]) expect(() => lossRules({ wanInterface: "wan0" }, bad), `p=${bad}`).toThrow(LabError);
  });
});
