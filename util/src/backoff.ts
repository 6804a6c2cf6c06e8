/**
 * Exponential backoff with jitter, and the retry loop built on it. Every "try again later" in Weft
 * (reconnects, watches that cannot start yet, enrollment, workload sync) uses these, so the delays
 * and give-up rules are the same everywhere and tested once.
 */

export interface BackoffOptions {
  /** First delay. */
  initialMs: number;
  /** Longest delay. */
  maxMs: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * Share of each delay that is random, 0..1: the delay is drawn from [d·(1−jitter), d·(1+jitter)],
   * capped at maxMs·(1+jitter). Default 0.5 (spreads a fleet reconnecting at once).
   */
  jitter?: number;
  /** Random source in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

/** Delays that grow from initialMs to maxMs; reset() after a success starts over. */
export class Backoff {
  private attempt = 0;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(private readonly o: BackoffOptions) {
    if (!(o.initialMs > 0) || !(o.maxMs >= o.initialMs)) throw new RangeError(`backoff: need 0 < initialMs <= maxMs (got ${o.initialMs}, ${o.maxMs})`);
    this.factor = o.factor ?? 2;
    this.jitter = Math.min(1, Math.max(0, o.jitter ?? 0.5));
    this.random = o.random ?? Math.random;
  }

  /** The delay before the next attempt (and count it). */
  next(): number {
    const base = Math.min(this.o.maxMs, this.o.initialMs * this.factor ** this.attempt);
    this.attempt++;
    return Math.round(base * (1 - this.jitter + 2 * this.jitter * this.random()));
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Thrown by sleep and retry when their signal aborts; `cause` is the signal's reason. */
export class AbortedError extends Error {
  override readonly name = "AbortedError";
}

/**
 * Resolves after `ms`, or rejects with AbortedError as soon as `signal` aborts. Like setTimeout, the
 * wait keeps the process alive (a retry loop is often the only thing the process is doing);
 * `unref: true` is for background loops that must not hold a process open on their own.
 */
export function sleep(ms: number, signal?: AbortSignal, opts: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError("aborted", { cause: signal.reason }));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError("aborted", { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (opts.unref) timer.unref?.();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** True when an error says trying again may help (`err.retryable === true`). */
export function isRetryable(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { retryable?: unknown }).retryable === true;
}

export interface RetryOptions extends BackoffOptions {
  /** Whether to try again after `err`. Default: always (until the signal aborts). */
  retryIf?: (err: unknown) => boolean;
  /** Called before each wait, e.g. to log `retryInMs`. */
  onRetry?: (err: unknown, delayMs: number, attempt: number) => void;
  /** Give up after this many attempts (the last error is thrown). Default: never. */
  maxAttempts?: number;
  signal?: AbortSignal;
}

/**
 * Calls `fn` until it resolves. After a failure it waits a backoff delay and tries again, unless
 * `retryIf` says no, `maxAttempts` is reached (the error is thrown) or `signal` aborts (AbortedError).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const backoff = new Backoff(o);
  for (let attempt = 1; ; attempt++) {
    if (o.signal?.aborted) throw new AbortedError("aborted", { cause: o.signal.reason });
    try {
      return await fn(attempt);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      if (o.retryIf && !o.retryIf(err)) throw err;
      if (o.maxAttempts !== undefined && attempt >= o.maxAttempts) throw err;
      const delay = backoff.next();
      o.onRetry?.(err, delay, attempt);
      await sleep(delay, o.signal);
    }
  }
}
