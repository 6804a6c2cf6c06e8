import { describe, expect, it } from "vitest";
import { Periodic } from "./periodic.js";

describe("periodic", () => {
  it("periodic - runs every interval once started, never two at once, and not after stop()", async () => {
    let running = 0;
    let most = 0;
    let passes = 0;
    const p = new Periodic(async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 15));
      running--;
      return ++passes;
    }, 5);
    p.start();
    await new Promise((r) => setTimeout(r, 120));
    await p.stop();
    const atStop = passes;
    expect(atStop, "passes in 120 ms at a 5 ms interval, 15 ms each").toBeGreaterThanOrEqual(3);
    expect(most, "passes at once").toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(passes, "passes after stop()").toBe(atStop);
    expect(await p.run(), "a pass on demand after stop()").toBe(atStop + 1);
  });
});
