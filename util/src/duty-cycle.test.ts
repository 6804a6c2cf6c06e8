import { describe, expect, it } from "vitest";
import { DutyCycle } from "./duty-cycle.js";

describe("DutyCycle", () => {
  const timed = () => {
    let now = 1000;
    return { clock: () => now, advance: (ms: number) => (now += ms) };
  };

  it("duty cycle - a pass earns rest so passes take at most the share", async () => {
    const t = timed();
    const d = new DutyCycle(0.1, t.clock);
    expect(d.delay(500), "before any pass: the caller's minimum").toBe(500);
    await d.run(async () => t.advance(300));
    expect(d.delay(500), "after a 300 ms pass at share 0.1: 2,700 ms").toBe(2700);
    t.advance(2000);
    expect(d.delay(500), "2 s later: what is left of the rest").toBe(700);
    t.advance(1000);
    expect(d.delay(500), "rest over: the minimum again").toBe(500);
  });

  it("duty cycle - a short pass keeps the caller's minimum", async () => {
    const t = timed();
    const d = new DutyCycle(0.1, t.clock);
    await d.run(async () => t.advance(20));
    expect(d.delay(500), "20 ms pass earns 180 ms, under the minimum").toBe(500);
  });

  it("duty cycle - a pass that throws still earns its rest and rethrows", async () => {
    const t = timed();
    const d = new DutyCycle(0.5, t.clock);
    await expect(
      d.run(async () => {
        t.advance(400);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(d.delay(0), "400 ms pass at share 0.5").toBe(400);
  });

  it("duty cycle - refuses a share outside (0, 1]", () => {
    expect(() => new DutyCycle(0)).toThrow(RangeError);
    expect(() => new DutyCycle(1.5)).toThrow(RangeError);
  });
});
