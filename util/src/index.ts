/**
 * @weft/util: the loops every long-running part of Weft needs, written once (see README.md).
 */
export { AbortedError, Backoff, isRetryable, retry, sleep, type BackoffOptions, type RetryOptions } from "./backoff.js";
export { forEachLimit } from "./for-each-limit.js";
export { KeyedSerial } from "./keyed-serial.js";
export { LatestWins } from "./latest-wins.js";
export { DutyCycle } from "./duty-cycle.js";
export { Periodic } from "./periodic.js";
export { SingleFlight } from "./single-flight.js";
