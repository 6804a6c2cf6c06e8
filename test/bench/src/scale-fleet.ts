/**
 * The simulated fleet as the scale benchmark's coordinator sees it: worker processes
 * (scale-worker.ts, forked with this process's loader so TypeScript runs as is), each running a
 * share of the agents, driven over IPC. Every call goes to all workers and gathers their answers.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FleetSpec, FromWorker, Probe, ToWorker } from "./scale-protocol.js";

export interface FleetOptions {
  agents: number;
  /** Agents per worker process. */
  perProcess: number;
  /** Agents running the full peers watch, spread evenly over the workers. */
  full: number;
  apiUrl: string;
  caHash: string;
  joinKey: string;
  concurrency: number;
  /** V8 heap limit of each worker (MB). */
  heapMb: number;
  /** Write a V8 CPU profile of each worker here (on exit). */
  profileDir?: string | undefined;
}

type Reply<T extends FromWorker["type"]> = Extract<FromWorker, { type: T }>;

export class Fleet {
  readonly #workers: ChildProcess[] = [];
  readonly #specs: FleetSpec[] = [];
  #probeId = 0;

  constructor(private readonly o: FleetOptions) {
    const n = Math.ceil(o.agents / o.perProcess);
    let first = 0;
    for (let w = 0; w < n; w++) {
      const count = Math.min(o.perProcess, o.agents - first);
      const full = Math.floor((o.full * (w + 1)) / n) - Math.floor((o.full * w) / n);
      this.#specs.push({ apiUrl: o.apiUrl, caHash: o.caHash, joinKey: o.joinKey, first, count, full: Math.min(full, count), concurrency: o.concurrency });
      first += count;
      const child = fork(fileURLToPath(new URL("./scale-worker.ts", import.meta.url)), [], {
        execArgv: [...process.execArgv, `--max-old-space-size=${o.heapMb}`, ...(o.profileDir ? ["--cpu-prof", "--cpu-prof-dir", o.profileDir] : [])],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        env: o.profileDir ? { ...process.env, WEFT_BENCH_SCALE_PROFILE_DIR: o.profileDir } : process.env,
        // Structured clone: NaN (an agent not there yet) stays NaN rather than turning into null.
        serialization: "advanced",
      });
      this.#workers.push(child);
    }
  }

  get pids(): number[] {
    return this.#workers.map((w) => w.pid ?? 0);
  }

  /** Enrolls every agent; per agent the time its enrollment took (ms), and the failures. */
  async enroll(): Promise<{ times: number[]; failures: string[] }> {
    const replies = await Promise.all(this.#workers.map((w, i) => this.#ask(w, { type: "enroll", spec: this.#specs[i] as FleetSpec }, "enrolled")));
    return { times: replies.flatMap((r) => r.times), failures: replies.flatMap((r) => r.failures) };
  }

  /** Connects every agent and waits until each has its first peer set and policy; per agent, the time that took (ms). */
  async connect(): Promise<{ syncMs: number[]; full: boolean[]; failures: string[] }> {
    const replies = await Promise.all(this.#workers.map((w) => this.#ask(w, { type: "connect" }, "connected")));
    const syncMs = replies.flatMap((r) => r.syncedAt.map((t, k) => t - (r.startedAt[k] ?? Number.NaN)));
    const full = this.#specs.flatMap((s) => Array.from({ length: s.count }, (_, k) => k < s.full));
    return { syncMs, full, failures: replies.flatMap((r) => r.failures) };
  }

  /**
   * Arms `probe` on every agent, then runs `change` and waits (up to `timeoutMs`) until every
   * agent holds it. Per agent, ms from the change's start to the probe holding (NaN: never).
   */
  async until(probe: Probe, change: () => Promise<void>, timeoutMs: number): Promise<{ startedAt: number; changedMs: number; latenciesMs: number[]; reconnectedMs: number[]; missing: number; natsStates: Record<string, number> }> {
    const id = ++this.#probeId;
    const done = this.#workers.map((w) => this.#ask(w, undefined, "probeDone", (m) => m.id === id));
    await Promise.all(this.#workers.map((w) => this.#ask(w, { type: "probe", id, probe }, "armed", (m) => m.id === id)));
    const startedAt = performance.timeOrigin + performance.now();
    await change();
    const changedMs = performance.timeOrigin + performance.now() - startedAt;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const all = await Promise.race([Promise.all(done), timedOut]).finally(() => clearTimeout(timer));
    const replies = all === "timeout" ? await Promise.all(this.#workers.map((w) => this.#ask(w, { type: "collect", id }, "collected", (m) => m.id === id))) : all;
    const states = new Map<string, number>();
    for (const r of replies) for (const [k, v] of Object.entries(r.natsStates)) states.set(k, (states.get(k) ?? 0) + v);
    const latenciesMs = replies.flatMap((r) => r.times).map((t) => t - startedAt);
    const reconnectedMs = replies.flatMap((r) => r.reconnectedAt).map((t) => t - startedAt);
    return { startedAt, changedMs, latenciesMs, reconnectedMs, missing: latenciesMs.filter((x) => Number.isNaN(x)).length, natsStates: Object.fromEntries(states) };
  }

  /** Bytes and messages received by all agents' connections so far, and the workers' RSS (MB). */
  async stats(): Promise<{ inBytes: number; inMsgs: number; rssMb: number[] }> {
    const r = await Promise.all(this.#workers.map((w) => this.#ask(w, { type: "stats" }, "stats")));
    return { inBytes: r.reduce((s, x) => s + x.inBytes, 0), inMsgs: r.reduce((s, x) => s + x.inMsgs, 0), rssMb: r.map((x) => x.rssMb) };
  }

  /** Closes every agent's connection and ends the workers (killed after 20 s). */
  async stop(): Promise<void> {
    await Promise.all(
      this.#workers.map(async (w) => {
        if (w.exitCode !== null || w.signalCode !== null) return;
        const exited = new Promise((r) => w.once("exit", r));
        const timer = setTimeout(() => w.kill("SIGKILL"), 20_000);
        if (w.connected) await this.#ask(w, { type: "stop" }, "stopped").catch(() => undefined);
        w.kill("SIGTERM");
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Sends `msg` (if any) and resolves with the first reply of `type` matching `accept`; rejects on a worker error or exit. */
  #ask<T extends FromWorker["type"]>(w: ChildProcess, msg: ToWorker | undefined, type: T, accept: (m: Reply<T>) => boolean = () => true): Promise<Reply<T>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === "error") return finish(new Error(`scale worker ${w.pid}: ${m.message}`));
        if (m.type === type && accept(m as Reply<T>)) finish(m as Reply<T>);
      };
      const onExit = (code: number | null) => finish(new Error(`scale worker ${w.pid} exited (${code}) while waiting for ${type}`));
      const finish = (r: Reply<T> | Error) => {
        w.off("message", onMessage);
        w.off("exit", onExit);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      w.on("message", onMessage);
      w.once("exit", onExit);
      if (msg) w.send(msg);
    });
  }
}
