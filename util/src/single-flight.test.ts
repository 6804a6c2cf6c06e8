/**
 * SingleFlight: never two runs at once; callers during a run share exactly one queued run that
 * starts after it; an error reaches the callers of that run only.
 */
import { describe, expect, it } from "vitest";
import { SingleFlight } from "./single-flight.js";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("util/single-flight", () => {
  it("single-flight - callers during a run share one queued run", async () => {
    const gates: ReturnType<typeof deferred>[] = [];
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const sf = new SingleFlight(async () => {
      const n = ++runs;
      active++;
      maxActive = Math.max(maxActive, active);
      const g = deferred();
      gates.push(g);
      await g.promise;
      active--;
      return n;
    });
    const first = sf.run();
    const second = sf.run();
    const third = sf.run();
    expect(second, "callers during a run get the same queued promise").toBe(third);
    await Promise.resolve();
    gates[0]!.resolve();
    expect(await first).toBe(1);
    for (let i = 0; i < 50 && gates.length < 2; i++) await new Promise((r) => setTimeout(r, 1));
    gates[1]!.resolve();
    expect(await second).toBe(2);
    expect(runs, "runs").toBe(2);
    expect(maxActive, "runs at once").toBe(1);
    await sf.idle();
    expect(sf.busy).toBe(false);
  });

  it("single-flight - a failed run rejects its callers and the next run still happens", async () => {
    let runs = 0;
    const sf = new SingleFlight(async () => {
      runs++;
      if (runs === 1) throw new Error("first fails");
      return runs;
    });
    const a = sf.run();
    const b = sf.run();
    await expect(a).rejects.toThrow("first fails");
    await expect(b).resolves.toBe(2);
  });

  it("single-flight - a synchronous throw becomes a rejection", async () => {
    const sf = new SingleFlight<number>(() => {
      throw new Error("sync");
    });
    await expect(sf.run()).rejects.toThrow("sync");
    expect(sf.busy).toBe(false);
  });
});
