/**
 * Faults a test injects into a simulator's API: throttling, server errors, refused credentials,
 * slow answers. Each fault applies to the next `count` API calls (optionally only those whose
 * operation matches), then disappears; `count: -1` keeps it until cleared.
 */

export type FaultKind = "throttle" | "server-error" | "auth" | "slow";

export interface Fault {
  kind: FaultKind;
  /** How many calls it hits; -1 = until cleared. */
  count: number;
  /** Only calls to this operation (DescribeInstances, virtualMachines.listAll, instances.aggregatedList…). */
  operation?: string;
  /** slow: added latency; throttle: Retry-After the server sends (seconds, where the cloud sends one). */
  delayMs?: number;
  retryAfterSeconds?: number;
}

export class Faults {
  private queue: Fault[] = [];
  /** Calls seen per operation, faulted or not: tests assert on retries with it. */
  readonly calls = new Map<string, number>();

  add(f: Fault): void {
    this.queue.push({ ...f });
  }

  clear(): void {
    this.queue = [];
  }

  /** The fault for this call, if any (consumes one use). Records the call. */
  take(operation: string): Fault | undefined {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    const i = this.queue.findIndex((f) => f.operation === undefined || f.operation === operation);
    if (i < 0) return undefined;
    const f = this.queue[i]!;
    if (f.count > 0) {
      f.count--;
      if (f.count === 0) this.queue.splice(i, 1);
    }
    return f;
  }

  pending(): Fault[] {
    return this.queue.map((f) => ({ ...f }));
  }
}
