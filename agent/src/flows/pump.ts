/**
 * One sink's bounded queue and the loop that drains it: batches of at most `batch` records, one at
 * a time; a failed batch is dropped (counted as failed, logged) and the next waits a backoff, so a
 * collector that is down never makes records pile up beyond the queue or slows the agent.
 */
import type { FlowRecord } from "@weft/protocol";
import { Backoff, sleep } from "@weft/util";
import type { Logger } from "pino";
import { DropQueue } from "./queue.js";
import type { FlowSink } from "./sinks.js";

export type ExportResult = "exported" | "dropped" | "failed";

export interface PumpCounts {
  sink: string;
  exported: number;
  dropped: number;
  failed: number;
  queued: number;
}

export class SinkPump {
  readonly #queue: DropQueue<FlowRecord>;
  readonly #backoff = new Backoff({ initialMs: 1000, maxMs: 60_000 });
  #running: Promise<void> | undefined;
  #closed = false;
  readonly #abort = new AbortController();
  #exported = 0;
  #failed = 0;

  constructor(
    readonly sink: FlowSink,
    capacity: number,
    private readonly log: Logger,
    private readonly batch = 512,
  ) {
    this.#queue = new DropQueue(capacity);
  }

  /** Queues records (dropping what does not fit) and makes sure the drain loop runs. */
  offer(records: readonly FlowRecord[]): void {
    if (this.#closed || records.length === 0) return;
    const dropped = this.#queue.push(records);
    if (dropped > 0) this.log.warn({ sink: this.sink.name, dropped, queued: this.#queue.length }, "flow export queue full: records dropped");
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
  }

  counts(): PumpCounts {
    return { sink: this.sink.name, exported: this.#exported, dropped: this.#queue.dropped, failed: this.#failed, queued: this.#queue.length };
  }

  /** Waits until the queue is empty (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops taking records; what is queued gets one last try unless a backoff is under way. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    await this.idle();
    await this.sink.close();
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.take(this.batch);
      try {
        await this.sink.export(batch);
        this.#exported += batch.length;
        this.#backoff.reset();
      } catch (err) {
        this.#failed += batch.length;
        const wait = this.#backoff.next();
        this.log.warn({ sink: this.sink.name, err, records: batch.length, retryInMs: wait }, "flow export failed: batch dropped");
        if (this.#closed) return;
        await sleep(wait, this.#abort.signal).catch(() => undefined);
        if (this.#closed) return;
      }
    }
  }
}
