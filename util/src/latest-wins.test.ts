/**
 * LatestWins: applies run one at a time, values submitted while one runs are
 * coalesced to the newest, and a failing apply is reported without stopping
 * later ones.
 */
import { describe, expect, it } from "vitest";
import { LatestWins } from "./latest-wins.js";

/** An apply whose calls the test finishes one by one. */
function gatedApply<T>() {
  const calls: T[] = [];
  const gates: (() => void)[] = [];
  let running = 0;
  let maxRunning = 0;
  const apply = async (v: T) => {
    calls.push(v);
    running++;
    maxRunning = Math.max(maxRunning, running);
    await new Promise<void>((r) => gates.push(r));
    running--;
  };
  const waitForCall = async (n: number) => {
    for (let i = 0; i < 100 && calls.length < n; i++) await new Promise((r) => setTimeout(r, 1));
  };
  const releaseNext = async () => {
    for (let i = 0; i < 100 && gates.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
    gates.shift()?.();
  };
  return { apply, calls, waitForCall, releaseNext, maxRunning: () => maxRunning };
}

describe("util/latest-wins", () => {
  it("latest-wins - values submitted during an apply are coalesced: only the newest runs next", async () => {
    const g = gatedApply<number>();
    const lw = new LatestWins<number>(g.apply, (err) => {
      throw err;
    });
    lw.submit(1);
    await g.waitForCall(1);
    lw.submit(2);
    lw.submit(3);
    lw.submit(4);
    await g.releaseNext();
    await g.releaseNext();
    await lw.idle();
    expect(g.calls, "applied values").toEqual([1, 4]);
    expect(g.maxRunning(), "applies running at once").toBe(1);
  });

  it("latest-wins - merge makes the next value from the replaced one and the newer", async () => {
    const g = gatedApply<{ v: number; asks: number[] }>();
    const lw = new LatestWins<{ v: number; asks: number[] }>(
      g.apply,
      (err) => {
        throw err;
      },
      (replaced, next) => ({ v: next.v, asks: [...replaced.asks, ...next.asks] }),
    );
    lw.submit({ v: 1, asks: [] });
    await g.waitForCall(1);
    lw.submit({ v: 2, asks: [7] });
    lw.submit({ v: 3, asks: [] });
    lw.submit({ v: 4, asks: [9] });
    await g.releaseNext();
    await g.releaseNext();
    await lw.idle();
    expect(g.calls, "the newest value, with what every replaced one asked").toEqual([
      { v: 1, asks: [] },
      { v: 4, asks: [7, 9] },
    ]);
  });

  it("latest-wins - values submitted in one burst are applied once, as the newest", async () => {
    const calls: number[] = [];
    const lw = new LatestWins<number>(
      async (v) => {
        calls.push(v);
        await new Promise((r) => setTimeout(r, 5));
      },
      () => {},
    );
    for (let i = 1; i <= 10; i++) lw.submit(i);
    await lw.idle();
    expect(calls, "applied values").toEqual([10]);
  });

  it("latest-wins - a submission after idle is applied", async () => {
    const applied: string[] = [];
    const lw = new LatestWins<string>(
      async (v) => {
        applied.push(v);
      },
      () => {},
    );
    lw.submit("a");
    await lw.idle();
    lw.submit("b");
    await lw.idle();
    expect(applied, "applied values").toEqual(["a", "b"]);
  });

  it("latest-wins - a rejected apply is reported and later submissions are still applied", async () => {
    const errors: unknown[] = [];
    const applied: number[] = [];
    const lw = new LatestWins<number>(
      async (v) => {
        if (v === 1) throw new Error("wg set failed");
        applied.push(v);
      },
      (err) => errors.push(err),
    );
    lw.submit(1);
    await lw.idle();
    lw.submit(2);
    await lw.idle();
    expect(errors.map(String), "reported errors").toEqual(["Error: wg set failed"]);
    expect(applied, "applied after the failure").toEqual([2]);
  });

  it("latest-wins - an apply that throws synchronously is reported and does not wedge the queue", async () => {
    const errors: unknown[] = [];
    const applied: number[] = [];
    const lw = new LatestWins<number>(
      (v) => {
        if (v === 1) throw new Error("sync failure");
        applied.push(v);
        return Promise.resolve();
      },
      (err) => errors.push(err),
    );
    // No idle() here: on a wedged queue it would spin on a settled promise and starve the timers.
    lw.submit(1);
    await new Promise((r) => setTimeout(r, 20));
    lw.submit(2);
    for (let i = 0; i < 50 && applied.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(errors.map(String), "reported errors").toEqual(["Error: sync failure"]);
    expect(applied, `applied after a synchronous failure: got ${JSON.stringify(applied)}, want [2]`).toEqual([2]);
  });

  it("latest-wins - an error handler that throws does not stop later applies", async () => {
    const applied: number[] = [];
    const lw = new LatestWins<number>(
      async (v) => {
        if (v === 1) throw new Error("apply failed");
        applied.push(v);
      },
      () => {
        throw new Error("logger failed");
      },
    );
    lw.submit(1);
    await new Promise((r) => setTimeout(r, 20));
    lw.submit(2);
    for (let i = 0; i < 50 && applied.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(applied, `applied after the handler threw: got ${JSON.stringify(applied)}, want [2]`).toEqual([2]);
  });
});
