/**
 * Serialises applies of the latest desired state: while one apply runs, newer submissions replace
 * each other and only the last is applied next (`merge`, when given, makes the next one from the
 * replaced submission and the newer: what a submission asks besides its state need not be lost).
 * An apply that throws is reported to `onError` and does not stop later ones.
 */
export class LatestWins<T> {
  private pending: { value: T } | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly apply: (value: T) => Promise<void>,
    private readonly onError: (err: unknown) => void,
    private readonly merge: (replaced: T, next: T) => T = (_, next) => next,
  ) {}

  submit(value: T): void {
    this.pending = { value: this.pending ? this.merge(this.pending.value, value) : value };
    this.running ??= this.drain();
  }

  /** Resolves when nothing is pending or running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    // Yield first: `submit` assigns `running` only when drain() returns, so a drain that finished
    // synchronously (an apply that throws before its first await) would otherwise clear `running`
    // before it is set and wedge the queue.
    await Promise.resolve();
    while (this.pending) {
      const { value } = this.pending;
      this.pending = undefined;
      try {
        await this.apply(value);
      } catch (err) {
        try {
          this.onError(err);
        } catch {
          // A failing error handler must not stop later applies.
        }
      }
    }
    this.running = undefined;
  }
}
