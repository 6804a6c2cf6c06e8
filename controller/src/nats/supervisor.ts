/**
 * Keeps the embedded nats-server running: when it exits unexpectedly it is
 * started again on the same port and store directory, with jittered backoff,
 * forever. Clients (the controller's own connection, every agent) reconnect by
 * themselves and resync from KV.
 */
import { retry } from "@weft/util";
import type { Logger } from "./logger.js";
import { startEmbeddedNats, type EmbeddedNats, type EmbeddedNatsOptions } from "./embedded.js";

export interface SupervisedNats {
  url: string;
  port: number;
  /** PID of the server currently running. */
  readonly pid: number;
  /** How many times the server was restarted after dying. */
  readonly restarts: number;
  stop(): Promise<void>;
  /** The running server rereads its config and certificate. */
  reload(): void;
}

export async function superviseEmbeddedNats(opts: EmbeddedNatsOptions & { logger: Logger }): Promise<SupervisedNats> {
  let stopped = false;
  const stopping = new AbortController();
  let restarts = 0;
  let current: EmbeddedNats;
  const log = opts.logger;

  const start = async (port: number): Promise<EmbeddedNats> =>
    startEmbeddedNats({
      ...opts,
      port,
      onUnexpectedExit: (exit) => {
        if (stopped) return;
        log.error({ code: exit.code, signal: exit.signal, stderr: exit.stderrTail.slice(-5) }, "embedded nats-server exited; restarting it");
        // Restart on the port actually bound (the first start may have asked for 0).
        void restart(current.port);
      },
    });

  const restart = async (port: number): Promise<void> => {
    try {
      current = await retry(() => start(port), {
        initialMs: 200,
        maxMs: 10_000,
        signal: stopping.signal,
        onRetry: (err, delay) => log.error({ err, retryInMs: delay }, "embedded nats-server failed to restart"),
      });
      restarts++;
      log.info({ pid: current.pid, restarts }, "embedded nats-server restarted");
    } catch {
      // Only the stop aborts the retries.
    }
  };

  current = await start(opts.port ?? 4222);
  const port = current.port;
  return {
    url: current.url,
    port,
    get pid() {
      return current.pid;
    },
    get restarts() {
      return restarts;
    },
    reload: () => current.reload(),
    stop: async () => {
      stopped = true;
      stopping.abort();
      await current.stop();
    },
  };
}
