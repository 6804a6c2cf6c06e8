/**
 * Work for one key runs in submission order; work for different keys runs in parallel. A failed
 * task does not stop the ones queued behind it. Keys with nothing queued hold no memory.
 */
export class KeyedSerial {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
