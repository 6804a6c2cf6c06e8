import { describe, expect, it } from "vitest";
import { RECONNECT_INITIAL_MS, RECONNECT_MAX_MS, ReconnectDelays } from "./reconnect-delays.js";

describe("NATS reconnect delays", () => {
  const clock = () => {
    let now = 1_000_000;
    return { now: () => now, advance: (ms: number) => (now += ms) };
  };

  it("reconnect delays - one wait per attempt, growing to the cap, drawn from [0, 2x]", () => {
    const c = clock();
    const d = new ReconnectDelays(c.now, () => 0.75);
    const waits: number[] = [];
    for (let attempt = 0; attempt < 7; attempt++) {
      const w = d.next();
      expect(d.next(), `attempt ${attempt}: asked again before the wait passed`).toBe(w);
      c.advance(w / 2);
      expect(d.next(), `attempt ${attempt}: asked again halfway`).toBe(w);
      c.advance(w / 2);
      waits.push(w);
    }
    // random 0.75 → 1.5× the base: 0.5, 1, 2, 4 s, then the 4 s cap.
    const want = [500, 1000, 2000, 4000, 4000, 4000, 4000].map((base) => base * 1.5);
    expect(waits, "waits of seven failed attempts").toEqual(want);
  });

  it("reconnect delays - agents of one fleet draw different waits", () => {
    const c = clock();
    const fleet = Array.from({ length: 200 }, () => new ReconnectDelays(c.now));
    const first = fleet.map((d) => d.next());
    expect(Math.min(...first) >= 0 && Math.max(...first) <= 2 * RECONNECT_INITIAL_MS, `first waits within [0, ${2 * RECONNECT_INITIAL_MS}] ms`).toBe(true);
    expect(new Set(first).size, "distinct first waits among 200 agents").toBeGreaterThan(150);
  });

  it("reconnect delays - a new outage after a quiet minute starts from the shortest wait", () => {
    const c = clock();
    const d = new ReconnectDelays(c.now, () => 0.5);
    for (let i = 0; i < 6; i++) c.advance(d.next());
    expect(d.next(), "after six attempts: the cap").toBe(RECONNECT_MAX_MS);
    c.advance(RECONNECT_MAX_MS + 120_000);
    expect(d.next(), "next outage: the first wait again").toBe(RECONNECT_INITIAL_MS);
  });
});
