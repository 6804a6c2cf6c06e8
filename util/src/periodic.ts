/**
 * A pass run every `intervalMs` once started, and on demand, never two at once (SingleFlight):
 * the shape of the controller's sweepers (identity/reaper.ts, ipam/orphans.ts). The timer does not
 * keep the process alive; `stop()` clears it and waits for a pass under way.
 */
import { SingleFlight } from "./single-flight.js";

export class Periodic<T> {
  readonly #flight: SingleFlight<T>;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    pass: () => Promise<T>,
    private readonly intervalMs: number,
  ) {
    this.#flight = new SingleFlight(pass);
  }

  start(): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => void this.run().catch(() => undefined), this.intervalMs);
    this.#timer.unref();
  }

  stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    return this.#flight.idle();
  }

  /** A pass now, or the one queued after the pass under way (shared with everyone who asked meanwhile). */
  run(): Promise<T> {
    return this.#flight.run();
  }
}
