import type { LbStatsValue } from "@weft/bpf";
import { describe, expect, it } from "vitest";
import { BackendObserver } from "./observer.js";

const v = (o: Partial<Record<keyof LbStatsValue, number>>): LbStatsValue => ({
  active: BigInt(o.active ?? 0),
  connects: BigInt(o.connects ?? 0),
  failures: BigInt(o.failures ?? 0),
  established: BigInt(o.established ?? 0),
  latencySumNs: BigInt(o.latencySumNs ?? 0),
});
const K = "shop/api|10.0.0.1";
const one = (value: LbStatsValue) => new Map([[K, value]]);

describe("services observer", () => {
  it("observer - consecutive failed connects eject a backend for ejectMs; an established connection ends the streak", () => {
    const o = new BackendObserver({ consecutiveFailures: 3, ejectMs: 1000, tauMs: 1000 });
    o.update(one(v({})), 0);
    expect(o.update(one(v({ failures: 2 })), 100).ejectionChanged, "2 failures: not yet").toEqual([]);
    o.update(one(v({ failures: 2, established: 1 })), 200);
    expect(o.update(one(v({ failures: 4, established: 1 })), 300).ejectionChanged, "streak reset by the success: 2 more is still below 3").toEqual([]);
    const got = o.update(one(v({ failures: 5, established: 1 })), 400);
    expect([got.ejectionChanged, o.ejected(K, 400)], "third failure in a row").toEqual([[K], true]);
    expect(o.ejected(K, 1399)).toBe(true);
    expect([o.update(one(v({ failures: 5, established: 1 })), 1401).ejectionChanged, o.ejected(K, 1401)], "ejection over").toEqual([[K], false]);
  });

  it("observer - ejections in a row double, a success resets the doubling; readmit ends one early", () => {
    const o = new BackendObserver({ consecutiveFailures: 1, ejectMs: 1000, tauMs: 1000 });
    o.update(one(v({})), 0);
    o.update(one(v({ failures: 1 })), 10);
    expect(o.ejected(K, 1009)).toBe(true);
    o.update(one(v({ failures: 1 })), 1100);
    o.update(one(v({ failures: 2 })), 1200);
    expect([o.ejected(K, 3199), o.ejected(K, 3201)], "second ejection: 2000 ms").toEqual([true, false]);
    expect(o.readmit(K), "readmit").toBe(true);
    expect(o.ejected(K, 1300)).toBe(false);
    expect(o.readmit(K), "nothing to readmit").toBe(false);
  });

  it("observer - latency: the first sample sets the EWMA, later ones move it by the elapsed time's share", () => {
    const o = new BackendObserver({ consecutiveFailures: 3, ejectMs: 1000, tauMs: 1000 });
    o.update(one(v({})), 0);
    const first = o.update(one(v({ established: 2, latencySumNs: 4_000_000 })), 100);
    expect([o.latencyMs(K), first.latencyChanged]).toEqual([2, [K]]);
    o.update(one(v({ established: 3, latencySumNs: 14_000_000 })), 100 + Math.round(1000 * Math.log(2)));
    expect(o.latencyMs(K), "halfway (alpha 0.5) from 2 ms to 10 ms").toBeCloseTo(6, 1);
    const quiet = o.update(one(v({ established: 3, latencySumNs: 14_000_000 })), 2000);
    expect([quiet.latencyChanged, o.latencyMs(K)], "no new connection: no change").toEqual([[], expect.closeTo(6, 1)]);
  });

  it("observer - backends that disappear are forgotten unless ejected", () => {
    const o = new BackendObserver({ consecutiveFailures: 1, ejectMs: 1000, tauMs: 1000 });
    o.update(one(v({})), 0);
    o.update(new Map(), 10);
    expect(o.latencyMs(K)).toBeUndefined();
    o.update(one(v({})), 20);
    o.update(one(v({ failures: 1 })), 30);
    o.update(new Map(), 40);
    expect(o.ejected(K, 50), "an ejected one is kept until its time is up").toBe(true);
    expect(o.update(new Map(), 2000).ejectionChanged).toEqual([K]);
  });
});
