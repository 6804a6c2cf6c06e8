/**
 * What this node learns from its own connections to service backends (the datapath's weft_lb_stats
 * counters, read every few hundred ms): passive health and latency. Decisions only; no I/O.
 *
 * - Passive ejection (outlier detection, per client like Envoy's): a backend whose connects keep
 *   failing (at least `consecutiveFailures` failures with no established connection in between)
 *   is ejected on this node for `ejectMs`, doubled on each ejection in a row up to 16 times; an
 *   established connection ends the streak and resets the doubling. Ejection is local: other
 *   clients decide for themselves, and the controller only shows it (active checks decide health
 *   for everyone).
 * - Latency: an EWMA of connect-to-established time, sample = mean of the connections
 *   established since the last read, weighted by elapsed time (time constant `tauMs`).
 */
import type { LbStatsValue } from "@weft/bpf";

export interface ObserverOptions {
  consecutiveFailures: number;
  ejectMs: number;
  /** EWMA time constant. */
  tauMs: number;
}

export const DEFAULT_OBSERVER: ObserverOptions = { consecutiveFailures: 3, ejectMs: 10_000, tauMs: 2000 };

interface Backend {
  last: LbStatsValue;
  streak: number;
  ejectedUntil: number;
  ejections: number;
  ewmaMs: number | undefined;
  lastAt: number;
}

/** One backend of one service, as the stats map keys it: `namespace/name|address` (ports summed). */
export type BackendKey = string;

export interface Observation {
  /** Backends whose ejection started or ended in this update. */
  ejectionChanged: BackendKey[];
  /** Backends whose latency EWMA moved by more than 20 % (ewma-latency tables need rebuilding). */
  latencyChanged: BackendKey[];
}

export class BackendObserver {
  readonly #b = new Map<BackendKey, Backend>();

  constructor(private readonly o: ObserverOptions = DEFAULT_OBSERVER) {}

  /** Feeds the current counters of every backend (summed over service ports). */
  update(counters: ReadonlyMap<BackendKey, LbStatsValue>, now: number): Observation {
    const out: Observation = { ejectionChanged: [], latencyChanged: [] };
    for (const [key, c] of counters) {
      const b = this.#b.get(key);
      if (!b) {
        this.#b.set(key, { last: c, streak: 0, ejectedUntil: 0, ejections: 0, ewmaMs: undefined, lastAt: now });
        continue;
      }
      const wasEjected = b.ejectedUntil > b.lastAt;
      const failed = Number(c.failures - b.last.failures);
      const established = Number(c.established - b.last.established);
      const latencyNs = Number(c.latencySumNs - b.last.latencySumNs);
      if (established > 0) {
        b.streak = 0;
        b.ejections = 0;
        const sample = latencyNs / established / 1e6;
        const before = b.ewmaMs;
        const alpha = 1 - Math.exp(-(now - b.lastAt) / this.o.tauMs);
        b.ewmaMs = before === undefined ? sample : before + alpha * (sample - before);
        if (before === undefined || Math.abs(b.ewmaMs - before) > 0.2 * before) out.latencyChanged.push(key);
      }
      if (failed > 0 && established === 0) b.streak += failed;
      if (b.streak >= this.o.consecutiveFailures && b.ejectedUntil <= now) {
        b.ejectedUntil = now + this.o.ejectMs * 2 ** Math.min(b.ejections, 16);
        b.ejections++;
        b.streak = 0;
      }
      b.last = c;
      b.lastAt = now;
      const ejected = b.ejectedUntil > now;
      if (ejected !== wasEjected) out.ejectionChanged.push(key);
    }
    // Ejections that ran out while no new counters came.
    for (const [key, b] of this.#b) {
      if (counters.has(key) || b.ejectedUntil === 0) continue;
      if (b.ejectedUntil <= now) {
        b.ejectedUntil = 0;
        out.ejectionChanged.push(key);
      }
    }
    for (const key of [...this.#b.keys()]) if (!counters.has(key) && this.#b.get(key)!.ejectedUntil === 0) this.#b.delete(key);
    return out;
  }

  /** Ends an ejection early (the backend's active checks say it recovered). */
  readmit(key: BackendKey): boolean {
    const b = this.#b.get(key);
    if (!b || b.ejectedUntil === 0) return false;
    b.ejectedUntil = 0;
    b.ejections = 0;
    b.streak = 0;
    return true;
  }

  ejected(key: BackendKey, now: number): boolean {
    return (this.#b.get(key)?.ejectedUntil ?? 0) > now;
  }

  latencyMs(key: BackendKey): number | undefined {
    return this.#b.get(key)?.ewmaMs;
  }
}
