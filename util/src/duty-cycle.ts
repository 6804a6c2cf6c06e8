/**
 * A pass whose cost grows with the fleet (read every node record, plan, write what changed) must
 * not run as often as changes arrive: at thousands of nodes, enrollments come faster than one pass
 * takes. `DutyCycle` times each pass and says how long to wait before the next one so that passes
 * take at most `share` of the time: a pass of 20 ms on a small fleet changes nothing (the caller's
 * own debounce is longer), one of 300 ms at 5,000 nodes waits 2.7 s (share 0.1) before the next.
 */
export class DutyCycle {
  #restUntil = 0;

  constructor(
    private readonly share: number,
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (!(share > 0 && share <= 1)) throw new RangeError(`DutyCycle share must be in (0, 1], got ${share}`);
  }

  /** Runs `pass`, timing it; the rest it earns starts when it ends (also when it throws). */
  async run<T>(pass: () => Promise<T>): Promise<T> {
    const start = this.clock();
    try {
      return await pass();
    } finally {
      const end = this.clock();
      this.#restUntil = end + (end - start) * (1 / this.share - 1);
    }
  }

  /** How long to wait before the next pass: at least `minMs`, longer while the last pass's rest lasts. */
  delay(minMs: number): number {
    return Math.max(minMs, this.#restUntil - this.clock());
  }
}
