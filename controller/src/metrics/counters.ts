/**
 * The controller's counters: monotonically increasing numbers by label, kept in memory per
 * process, read with `read()` (what `GET /v1/counters` answers) and rendered by the controller's
 * /metrics (metrics.ts). One place for every counter, so nothing else keeps its own tally:
 *
 *   weft_controller_refusals_total{endpoint, reason}   requests refused, by stable reason code
 *                                                     (enroll, nonce, workloads; rate_limited too)
 *   weft_controller_policy_undelivered_total{reason}  compiled node policies not sent (oversized)
 *   weft_controller_identities_released_total         identity numbers released after their grace
 *   weft_controller_node_status_changes_total{status} a node judged online or offline (the liveness
 *                                                     leader's writes; a wave of `offline` right
 *                                                     after an outage means agents were slower to
 *                                                     come back than the grace)
 *
 * Labels are bounded by construction: endpoints and reasons are codes from this repository, never
 * caller input.
 */

export type CounterLabels = Readonly<Record<string, string>>;

export interface CounterSample {
  labels: CounterLabels;
  value: number;
}

export interface CounterSnapshot {
  name: string;
  help: string;
  samples: CounterSample[];
}

/** One counter with a fixed set of label names. */
export class Counter {
  readonly #values = new Map<string, CounterSample>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** Adds `by` (default 1) to the sample with these labels (every label name, nothing else). */
  inc(labels: CounterLabels = {}, by = 1): void {
    const key = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) throw new Error(`counter ${this.name}: label ${n} missing`);
      return v;
    });
    const id = JSON.stringify(key);
    const sample = this.#values.get(id);
    if (sample) sample.value += by;
    else this.#values.set(id, { labels: Object.fromEntries(this.labelNames.map((n, i) => [n, key[i]!])), value: by });
  }

  /** The value of the sample with exactly these labels (0 when never counted). */
  get(labels: CounterLabels = {}): number {
    return this.#values.get(JSON.stringify(this.labelNames.map((n) => labels[n] ?? "")))?.value ?? 0;
  }

  /** Every sample, sorted by labels. */
  snapshot(): CounterSnapshot {
    const samples = [...this.#values.values()].map((s) => ({ labels: { ...s.labels }, value: s.value }));
    samples.sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));
    return { name: this.name, help: this.help, samples };
  }
}

/** Every counter of one controller process. */
export class ControllerCounters {
  /** A request refused, by endpoint (`enroll`, `nonce`, `workloads`) and stable reason code. */
  readonly refusals = new Counter("weft_controller_refusals_total", "Requests refused, by endpoint and reason", ["endpoint", "reason"]);
  /** A node's compiled policy not published, by reason (`oversized`). */
  readonly policyUndelivered = new Counter("weft_controller_policy_undelivered_total", "Compiled node policies not sent, by reason", ["reason"]);
  /** Identity numbers released after their grace. */
  readonly identitiesReleased = new Counter("weft_controller_identities_released_total", "Identity numbers released after the release grace", []);

  /** A node's judged status changed (`online`, `offline`), as written by the liveness leader. */
  readonly nodeStatusChanges = new Counter("weft_controller_node_status_changes_total", "Nodes judged online or offline, by the new status", ["status"]);

  /** Every counter (the /metrics exporter renders each). */
  all(): readonly Counter[] {
    return [this.refusals, this.policyUndelivered, this.identitiesReleased, this.nodeStatusChanges];
  }

  /** Every counter's samples, for `GET /v1/counters`. */
  read(): CounterSnapshot[] {
    return this.all().map((c) => c.snapshot());
  }
}
