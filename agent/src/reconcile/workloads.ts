/**
 * This node's workloads: plumbed from the cache at start (fail static), then asked of the
 * controller until it answers (1 s doubling up to 30 s: a refusal is logged and asked again, the
 * node's labels may change), and again after every NATS reconnect. The controller's answer is
 * kept in `state.workloads` for the next start. A new request replaces one still waiting to
 * retry. The plumbing itself is workloads/manager.ts.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { AbortedError, retry } from "@weft/util";
import type { AgentDatapath } from "../datapath/datapath.js";
import type { CommandRunner } from "../exec/runner.js";
import type { StateHolder } from "../state/holder.js";
import { WorkloadManager, type ConfiguredWorkload } from "../workloads/manager.js";

export interface WorkloadReconcilerOptions {
  configured: ConfiguredWorkload[];
  mtu: number;
  datapath: AgentDatapath | undefined;
  run: CommandRunner;
  state: StateHolder;
  log: Logger;
}

export class WorkloadReconciler {
  readonly #manager: WorkloadManager;
  /** Ends the retry loop of the request going on. */
  #attempt: AbortController | undefined;

  constructor(private readonly o: WorkloadReconcilerOptions) {
    const { state } = o;
    this.#manager = new WorkloadManager({
      nodeId: state.current.nodeId,
      configured: o.configured,
      overlayAddress: () => state.current.overlayAddress,
      mtu: o.mtu,
      datapath: o.datapath,
      run: o.run,
      log: o.log,
      save: (result) => state.update({ workloadPrefix: result.workloadPrefix, workloads: result.workloads }),
    });
  }

  /** Fail static: the workloads the controller recorded last, plumbed before it is reachable. A failure is logged. */
  async restore(): Promise<void> {
    await this.#manager.restore(this.o.state.current.workloads).catch((err: unknown) => this.o.log.error({ err }, "cannot restore cached workloads"));
  }

  /** After connecting: ask for the configured workloads, or drop cached ones no longer configured. */
  start(nc: NatsConnection): void {
    if (this.o.configured.length > 0 || (this.o.state.current.workloads?.length ?? 0) > 0) this.#sync(nc);
  }

  /** After a reconnect: ask again (changes made while disconnected were not seen). */
  resync(nc: NatsConnection): void {
    if (this.o.configured.length > 0) this.#sync(nc);
  }

  stop(): void {
    this.#attempt?.abort();
  }

  #sync(nc: NatsConnection): void {
    this.#attempt?.abort();
    const attempt = new AbortController();
    this.#attempt = attempt;
    void retry(() => this.#manager.sync(nc, this.o.state.current.workloads), {
      initialMs: 1000,
      maxMs: 30_000,
      // A request replaced by a newer one (or the agent stopping) is not retried.
      retryIf: () => !nc.isClosed() && !attempt.signal.aborted,
      signal: attempt.signal,
      onRetry: (err, delay) => this.o.log.error({ err, retryInMs: delay }, "cannot sync workloads with the controller; retrying"),
    }).catch((err: unknown) => {
      if (!(err instanceof AbortedError) && !nc.isClosed() && !attempt.signal.aborted) this.o.log.error({ err }, "cannot sync workloads with the controller");
    });
  }
}
