/**
 * Malformed messages from agents, counted per node and subject kind and logged at most once per
 * interval (a hostile or broken agent cannot fill the log): the first one of an interval is logged
 * at once, the rest of that interval are counted and reported in the next line. `counts()` is the
 * running total per node, for metrics and tests.
 */
import type { Logger } from "pino";

export interface MalformedOptions {
  log: Logger;
  /** Shortest time between two log lines about one node and kind. Default 60 s. */
  intervalMs?: number;
  now?: () => number;
}

interface Entry {
  total: number;
  /** Counted since the last log line. */
  unlogged: number;
  lastLoggedAt: number;
}

/** Keeps this many (node, kind) entries at most; a flood of invented node ids cannot grow it without bound. */
const MAX_ENTRIES = 10_000;

export class MalformedMessages {
  readonly #entries = new Map<string, Entry>();
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;

  constructor(o: MalformedOptions) {
    this.#log = o.log;
    this.#intervalMs = o.intervalMs ?? 60_000;
    this.#now = o.now ?? Date.now;
  }

  /** Counts one malformed message of `kind` (e.g. "heartbeat") from `node`; logs it unless one was logged this interval. */
  note(node: string, kind: string, problem: string): void {
    const key = `${node} ${kind}`;
    let e = this.#entries.get(key);
    if (!e) {
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
      e = { total: 0, unlogged: 0, lastLoggedAt: -Infinity };
      this.#entries.set(key, e);
    }
    e.total++;
    e.unlogged++;
    const now = this.#now();
    if (now - e.lastLoggedAt < this.#intervalMs) return;
    this.#log.warn({ node, kind, problem, malformed: e.unlogged, malformedTotal: e.total }, `dropping malformed ${kind} messages`);
    e.unlogged = 0;
    e.lastLoggedAt = now;
  }

  /** Malformed messages counted per node (all kinds). */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, e] of this.#entries) {
      const node = key.slice(0, key.indexOf(" "));
      out.set(node, (out.get(node) ?? 0) + e.total);
    }
    return out;
  }
}
