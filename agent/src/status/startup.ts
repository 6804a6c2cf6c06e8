/**
 * Start-up timings: each phase of an agent's start is logged once, as `start-up: <phase>` with
 * `sinceStartMs`, the milliseconds since the process started (performance.now(): Node's own
 * start-up and module loading count too), and `cpuMs`, the CPU time the process has used so far
 * (user + system; unlike wall time, not inflated by other load on the machine), and `systemCpuMs`, the
 * kernel's part of it (loading eBPF programs is the verifier's time, counted here). Read together with the overlay benchmark's start-up
 * figure, they say where a slow join spends its time.
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";

export class StartupTimer {
  readonly #seen = new Set<string>();

  constructor(private log: Logger) {}

  /** Logs the next phases with `log` (once the node id is known). */
  use(log: Logger): void {
    this.log = log;
  }

  /** Logs `phase` the first time it is reached; later calls are ignored. */
  mark(phase: string, fields: Record<string, unknown> = {}): void {
    if (this.#seen.has(phase)) return;
    this.#seen.add(phase);
    const cpu = process.cpuUsage();
    this.log.info({ phase, sinceStartMs: Math.round(performance.now()), cpuMs: Math.round((cpu.user + cpu.system) / 1000), systemCpuMs: Math.round(cpu.system / 1000), ...fields }, `start-up: ${phase}`);
  }
}
