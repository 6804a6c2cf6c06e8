/**
 * forEachLimit: never more than `limit` calls at once, every item exactly once, and a failure stops
 * new items and reaches the caller.
 */
import { describe, expect, it } from "vitest";
import { forEachLimit } from "./for-each-limit.js";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("util/for-each-limit", () => {
  it("for-each-limit - runs every item once with at most limit in flight", async () => {
    let active = 0;
    let maxActive = 0;
    const seen: number[] = [];
    await forEachLimit([...Array(20).keys()], 3, async (item) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await tick();
      seen.push(item);
      active--;
    });
    expect(maxActive, "most calls in flight").toBe(3);
    expect(seen.sort((a, b) => a - b), "items").toEqual([...Array(20).keys()]);
  });

  it("for-each-limit - an empty list and a limit above its length are fine", async () => {
    await forEachLimit([], 4, async () => {
      throw new Error("never called");
    });
    const seen: string[] = [];
    await forEachLimit(["a", "b"], 16, async (x) => void seen.push(x));
    expect(seen.sort(), "items").toEqual(["a", "b"]);
  });

  it("for-each-limit - the first failure rejects and no new item starts", async () => {
    const started: number[] = [];
    const run = forEachLimit([...Array(10).keys()], 2, async (item) => {
      started.push(item);
      await tick();
      if (item === 1) throw new Error("item 1 failed");
    });
    await expect(run, "rejection").rejects.toThrow("item 1 failed");
    expect(started.length, `items started: ${started.join(",")}`).toBeLessThanOrEqual(3);
  });

  it("for-each-limit - a limit below 1 is refused", async () => {
    await expect(forEachLimit([1], 0, async () => undefined), "limit 0").rejects.toThrow(RangeError);
  });
});
