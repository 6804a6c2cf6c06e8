/**
 * One run at a time, and at most one queued: the shape of every reconcile pass in Weft (publish
 * the gateway plan, compile and publish node policies, sync the inventory). A caller that asks
 * while a run is going gets the run queued after it — which starts after the current one and so
 * sees everything that changed before the ask — shared with everyone else who asked meanwhile.
 */
export class SingleFlight<T> {
  private running: Promise<T> | undefined;
  private queued: Promise<T> | undefined;

  constructor(private readonly fn: () => Promise<T>) {}

  /** Run now, or join the run queued after the current one. Rejects when that run throws. */
  run(): Promise<T> {
    if (!this.running) return this.begin();
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.begin();
      });
    return this.queued;
  }

  /** True while a run is going. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when no run is going or queued (errors are not rethrown here). */
  async idle(): Promise<void> {
    while (this.running || this.queued) await (this.queued ?? this.running)!.catch(() => undefined);
  }

  private begin(): Promise<T> {
    const run = (async () => this.fn())().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }
}
