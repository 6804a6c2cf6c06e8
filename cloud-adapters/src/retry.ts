/**
 * Retry with exponential backoff and full jitter for one cloud call. Each adapter classifies its
 * SDK's errors into InventoryTransientError (throttling, 5xx, network) or anything else (not
 * retried); a server's Retry-After wins over the computed delay.
 */
import { InventoryTransientError } from "./errors.js";

export interface RetryOptions {
  /** Attempts in all, the first included (default 6). */
  attempts?: number;
  /** First backoff (default 200 ms), doubled each time up to maxDelayMs (default 10 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Called before each wait: for logs and tests. */
  onRetry?: (err: InventoryTransientError, attempt: number, delayMs: number) => void;
  /** Test seam. */
  sleep?: (ms: number) => Promise<void>;
}

export async function withRetry<T>(call: () => Promise<T>, classify: (err: unknown) => unknown, o: RetryOptions = {}): Promise<T> {
  const attempts = o.attempts ?? 6;
  const base = o.baseDelayMs ?? 200;
  const max = o.maxDelayMs ?? 10_000;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (raw) {
      const err = classify(raw);
      if (!(err instanceof InventoryTransientError) || attempt >= attempts || o.signal?.aborted) throw err;
      const backoff = Math.min(max, base * 2 ** (attempt - 1));
      const delay = err.retryAfterMs ?? Math.round(Math.random() * backoff);
      o.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
