/**
 * The console's live stream: server-sent events that name what changed (`nodes`, `liveness`,
 * `policies`, `identities`, `inventory`, `flows`), so an open page reads those REST routes again
 * at once instead of polling. Changes come from the store's KV watches (updates only), from the
 * controller's heartbeat listener (liveness: handshake ages, online/offline; nodes/heartbeats.ts
 * `heard`) and from the flow collector.
 * Each topic is sent at most once per `coalesceMs` (a burst of writes is one event), liveness at
 * most once per `livenessMs`.
 *
 * Bounded: at most `maxClients` streams; a client that does not read (more than 64 KiB waiting)
 * is disconnected. A comment line every 15 s keeps idle connections open through proxies.
 */
import { PassThrough, type Readable } from "node:stream";
import { KvWatchInclude, type KV, type KvWatchEntry } from "@nats-io/kv";
import type { ConsoleTopic } from "@weft/protocol";
import { Backoff, sleep } from "@weft/util";
import type { Logger } from "pino";
import { ControllerError } from "../errors.js";

const KEEPALIVE_MS = 15_000;
const MAX_WAITING_BYTES = 64 * 1024;

/** Too many console streams open. Retry later. */
export class TooManyStreamsError extends ControllerError {
  readonly status = 503;
  readonly code = "too_many_streams";
  readonly retryable = true;
}

export interface ConsoleEventsOptions {
  log: Logger;
  /** Most open streams. Default 32. */
  maxClients?: number;
  /** Shortest time between two events of one topic. Default 200 ms. */
  coalesceMs?: number;
  /** Shortest time between two liveness events. Default 2 s. */
  livenessMs?: number;
}

type Watch = AsyncIterable<KvWatchEntry> & { stop(): void };

export class ConsoleEvents {
  readonly #clients = new Set<PassThrough>();
  readonly #timers = new Map<ConsoleTopic, NodeJS.Timeout>();
  readonly #lastSent = new Map<ConsoleTopic, number>();
  readonly #watches: Watch[] = [];
  readonly #keepalive: NodeJS.Timeout;
  #stopped = false;

  constructor(private readonly o: ConsoleEventsOptions) {
    this.#keepalive = setInterval(() => this.#write(": keepalive\n\n"), KEEPALIVE_MS);
    this.#keepalive.unref();
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Follows a bucket's changes as `topic` events (updates only; restarted with backoff if the watch ends). */
  follow(topic: ConsoleTopic, kv: KV): void {
    const backoff = new Backoff({ initialMs: 500, maxMs: 15_000 });
    const run = async (): Promise<void> => {
      while (!this.#stopped) {
        try {
          const watch = (await kv.watch({ key: ">", include: KvWatchInclude.UpdatesOnly })) as Watch;
          this.#watches.push(watch);
          backoff.reset();
          for await (const _ of watch) this.publish(topic);
        } catch (err) {
          if (!this.#stopped) this.o.log.warn({ err, topic }, "console: bucket watch failed; restarting");
        }
        if (!this.#stopped) await sleep(backoff.next());
      }
    };
    void run();
  }

  /** Tells every open stream that `topic` changed (coalesced). */
  publish(topic: ConsoleTopic): void {
    if (this.#stopped || this.#timers.has(topic)) return;
    const gap = topic === "liveness" ? (this.o.livenessMs ?? 2000) : (this.o.coalesceMs ?? 200);
    const wait = Math.max(0, (this.#lastSent.get(topic) ?? 0) + gap - Date.now());
    const timer = setTimeout(() => {
      this.#timers.delete(topic);
      this.#lastSent.set(topic, Date.now());
      this.#write(`event: change\ndata: ${JSON.stringify({ topic })}\n\n`);
    }, wait);
    timer.unref();
    this.#timers.set(topic, timer);
  }

  /** A new stream for one client; ends when the client goes away (`signal`) or the controller stops. */
  open(signal: AbortSignal): Readable {
    if (this.#clients.size >= (this.o.maxClients ?? 32)) throw new TooManyStreamsError("too many console streams are open; close a console tab and retry");
    const stream = new PassThrough();
    this.#clients.add(stream);
    const close = () => {
      this.#clients.delete(stream);
      stream.end();
    };
    signal.addEventListener("abort", close, { once: true });
    stream.once("close", () => this.#clients.delete(stream));
    stream.write(`retry: 2000\nevent: hello\ndata: {}\n\n`);
    return stream;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#keepalive);
    for (const t of this.#timers.values()) clearTimeout(t);
    for (const w of this.#watches.splice(0)) w.stop();
    for (const c of this.#clients) c.end();
    this.#clients.clear();
  }

  #write(chunk: string): void {
    for (const c of this.#clients) {
      if (c.writableLength + c.readableLength > MAX_WAITING_BYTES) {
        this.o.log.info("console: a stream's client stopped reading; disconnecting it");
        this.#clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(chunk);
    }
  }
}
