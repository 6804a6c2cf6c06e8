/**
 * A bounded queue that never blocks its producer: when full, a new item is dropped and counted.
 * Each flow sink drains its own queue at its own pace, so a slow or unreachable collector costs
 * records (counted in weft_flow_export_records_total{result="dropped"}), never the agent's time.
 */
export class DropQueue<T> {
  readonly #items: T[] = [];
  #dropped = 0;

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new RangeError(`DropQueue: capacity must be positive (got ${capacity})`);
  }

  /** Adds `items`; returns how many were dropped because the queue was full. */
  push(items: readonly T[]): number {
    const room = Math.max(0, this.capacity - this.#items.length);
    const taken = items.slice(0, room);
    this.#items.push(...taken);
    const dropped = items.length - taken.length;
    this.#dropped += dropped;
    return dropped;
  }

  /** Takes up to `max` items from the front. */
  take(max: number): T[] {
    return this.#items.splice(0, max);
  }

  get length(): number {
    return this.#items.length;
  }

  /** Items dropped since the queue was made. */
  get dropped(): number {
    return this.#dropped;
  }
}
