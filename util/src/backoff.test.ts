/**
 * Backoff and retry: delays grow by the factor up to the cap, jitter stays in its band, reset
 * starts over; retry stops on success, on retryIf = false, at maxAttempts and on abort.
 */
import { describe, expect, it } from "vitest";
import { AbortedError, Backoff, isRetryable, retry, sleep } from "./backoff.js";

describe("util/backoff", () => {
  it("backoff - delays double up to the cap without jitter", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
    const got = Array.from({ length: 6 }, () => b.next());
    expect(got, "delays").toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.attempts).toBe(6);
    b.reset();
    expect(b.next(), "after reset").toBe(100);
  });

  it("backoff - jitter keeps each delay within ±jitter of its base", () => {
    const low = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.5, random: () => 0 });
    const high = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.5, random: () => 0.999999 });
    expect(low.next()).toBe(500);
    expect(high.next()).toBe(1500);
  });

  it("backoff - refuses a nonsensical range", () => {
    expect(() => new Backoff({ initialMs: 0, maxMs: 10 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow(RangeError);
  });

  it("retry - tries until fn resolves, reporting each wait", async () => {
    const waits: number[] = [];
    let calls = 0;
    const got = await retry(
      async () => {
        if (++calls < 3) throw new Error("not yet");
        return "ok";
      },
      { initialMs: 1, maxMs: 4, jitter: 0, onRetry: (_e, d) => waits.push(d) },
    );
    expect(got).toBe("ok");
    expect(calls).toBe(3);
    expect(waits, "waits").toEqual([1, 2]);
  });

  it("retry - stops at once when retryIf says the error is final", async () => {
    let calls = 0;
    const final = Object.assign(new Error("refused"), { retryable: false });
    await expect(
      retry(
        async () => {
          calls++;
          throw final;
        },
        { initialMs: 1, maxMs: 1, retryIf: isRetryable },
      ),
    ).rejects.toBe(final);
    expect(calls).toBe(1);
  });

  it("retry - gives up after maxAttempts with the last error", async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          throw new Error(`attempt ${++calls}`);
        },
        { initialMs: 1, maxMs: 1, maxAttempts: 3 },
      ),
    ).rejects.toThrow("attempt 3");
  });

  it("retry - an abort during the wait ends it with AbortedError", async () => {
    const ac = new AbortController();
    const p = retry(
      async () => {
        throw new Error("down");
      },
      { initialMs: 60_000, maxMs: 60_000, signal: ac.signal, onRetry: () => setTimeout(() => ac.abort(new Error("stopping")), 5) },
    );
    await expect(p).rejects.toBeInstanceOf(AbortedError);
  });

  it("sleep - keeps the process alive while it waits unless asked not to (a retrying agent must not exit)", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    // Each count is taken right before the sleep, in the same tick: other timers of the worker come and go.
    let before = timers();
    const held = sleep(50);
    expect(timers(), "a plain sleep holds a timer that keeps the event loop alive").toBe(before + 1);
    await held;
    before = timers();
    const background = sleep(50, undefined, { unref: true });
    expect(timers(), "an unref'd sleep does not").toBe(before);
    await background;
  });

  it("sleep - rejects at once when already aborted", async () => {
    await expect(sleep(10, AbortSignal.abort())).rejects.toBeInstanceOf(AbortedError);
    await expect(sleep(1)).resolves.toBeUndefined();
  });

  it("isRetryable - reads the typed flag only", () => {
    expect(isRetryable(Object.assign(new Error("x"), { retryable: true }))).toBe(true);
    expect(isRetryable(new Error("retryable: true"))).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
  });
});
