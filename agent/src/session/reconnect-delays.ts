/**
 * How long an agent waits between attempts to reconnect to NATS: growing from 0.5 s to 4 s, each
 * drawn at random from [0, 2×] (full jitter). A restarted NATS server meets its whole fleet at
 * once; with a fixed 1–2 s retry, every handshake that did not finish in the server's TLS timeout
 * came back on the same schedule, and at 5,000 agents on a loaded machine almost none got through
 * in 90 s (test/bench/scale.ts). Growing, randomised waits spread the fleet out as attempts fail.
 *
 * nats.js asks for the wait (`reconnectDelayHandler`) on every turn of its reconnect loop and
 * measures it from the last attempt, so one drawn wait is handed out until it has passed; a call
 * after a long quiet (connected meanwhile: nats.js only asks while reconnecting) starts over.
 */
import { Backoff } from "@weft/util";

export const RECONNECT_INITIAL_MS = 500;
export const RECONNECT_MAX_MS = 4000;
/** No call for this long: the connection was up meanwhile, the next outage starts from the shortest wait. */
const QUIET_RESET_MS = 60_000;

export class ReconnectDelays {
  readonly #backoff: Backoff;
  #current = 0;
  #until = Number.NEGATIVE_INFINITY;
  #lastCall = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: () => number = Date.now,
    random: () => number = Math.random,
  ) {
    this.#backoff = new Backoff({ initialMs: RECONNECT_INITIAL_MS, maxMs: RECONNECT_MAX_MS, jitter: 1, random });
  }

  /** The wait nats.js measures from its last attempt (ms). */
  readonly next = (): number => {
    const now = this.clock();
    if (now - this.#lastCall > QUIET_RESET_MS) this.#backoff.reset();
    this.#lastCall = now;
    if (now >= this.#until) {
      this.#current = this.#backoff.next();
      this.#until = now + this.#current;
    }
    return this.#current;
  };
}
