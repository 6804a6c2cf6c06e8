/**
 * Active health checks of the service backends this node hosts (the controller lists them in the
 * node's record): a TCP connect, or an HTTP GET answered 2xx/3xx, every `intervalMs` with a
 * `timeoutMs` limit. A workload is checked from inside its own network namespace (a socket made
 * there, bpf's socketInNetns), so the check sees what a client sees of the application and no
 * policy stands between the host and its workload; the node itself is checked on its overlay
 * address. The first result sets the state; after that `unhealthyThreshold` failures in a row make
 * a backend unhealthy and `healthyThreshold` successes make it healthy again. Every change is
 * reported at once (`onChange`, a partial report); `snapshot()` is the full state the caller
 * sends every HEALTH_REFRESH_MS.
 */
import { request } from "node:http";
import { Socket } from "node:net";
import { socketInNetns } from "@weft/bpf";
import type { HealthCheckTask, HealthResult, Logger } from "@weft/protocol";

export interface ProbeResult {
  ok: boolean;
  ms: number;
  reason?: string;
}

/** A TCP socket to address:port, made inside the network namespace at `netnsPath` when given. */
function connectSocket(address: string, port: number, netnsPath: string | undefined): Socket {
  const socket = netnsPath ? new Socket({ fd: socketInNetns(netnsPath, "tcp"), readable: true, writable: true }) : new Socket();
  socket.connect(port, address);
  return socket;
}

/** One check of `task`. Never throws. */
export async function probe(task: HealthCheckTask, netnsPath: string | undefined): Promise<ProbeResult> {
  const started = performance.now();
  const done = (ok: boolean, reason?: string): ProbeResult => ({ ok, ms: performance.now() - started, ...(reason !== undefined ? { reason } : {}) });
  let socket: Socket;
  try {
    socket = connectSocket(task.address, task.port, netnsPath);
  } catch (err) {
    return done(false, `cannot open a socket: ${(err as Error).message}`.slice(0, 200));
  }
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish(done(false, `no answer within ${task.timeoutMs} ms`)), task.timeoutMs);
    socket.once("error", (err: NodeJS.ErrnoException) => finish(done(false, `${task.protocol} ${task.address}:${task.port}: ${err.code ?? err.message}`)));
    if (task.protocol === "tcp") {
      socket.once("connect", () => finish(done(true)));
      return;
    }
    const req = request({ createConnection: () => socket, host: task.address, port: task.port, path: task.path ?? "/", method: "GET", headers: { "user-agent": "weft-health-check", connection: "close" } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      finish(status >= 200 && status < 400 ? done(true) : done(false, `http ${task.address}:${task.port}${task.path ?? "/"}: status ${status}`));
    });
    req.once("error", (err: NodeJS.ErrnoException) => finish(done(false, `http ${task.address}:${task.port}: ${err.code ?? err.message}`)));
    req.end();
  });
}

interface Running {
  task: HealthCheckTask;
  timer: NodeJS.Timeout | undefined;
  state: "unknown" | "healthy" | "unhealthy";
  since: string;
  run: number;
  failures: number;
  successes: number;
  last?: ProbeResult;
  stopped: boolean;
}

export interface HealthCheckerOptions {
  /** The network namespace of a workload hosted here, by name (undefined: not configured here). */
  netnsOf: (workload: string) => string | undefined;
  onChange: (results: HealthResult[]) => void;
  log: Logger;
  /** The check itself (tests inject one). */
  probe?: (task: HealthCheckTask, netnsPath: string | undefined) => Promise<ProbeResult>;
}

const taskKey = (t: HealthCheckTask) => `${t.service}|${t.address}`;

export class HealthChecker {
  readonly #running = new Map<string, Running>();

  constructor(private readonly o: HealthCheckerOptions) {}

  /** Runs exactly these checks: new ones start at once, changed ones restart, others stop. */
  setTasks(tasks: readonly HealthCheckTask[]): void {
    const want = new Map(tasks.map((t) => [taskKey(t), t]));
    for (const [key, r] of this.#running) {
      const next = want.get(key);
      if (next && JSON.stringify(next) === JSON.stringify(r.task)) continue;
      r.stopped = true;
      clearTimeout(r.timer);
      this.#running.delete(key);
    }
    for (const [key, task] of want) {
      if (this.#running.has(key)) continue;
      const r: Running = { task, timer: undefined, state: "unknown", since: new Date().toISOString(), run: 0, failures: 0, successes: 0, stopped: false };
      this.#running.set(key, r);
      void this.#tick(r);
    }
  }

  /** Every check's current verdict (unknown ones left out). */
  snapshot(): HealthResult[] {
    return [...this.#running.values()].flatMap((r) => (r.state === "unknown" ? [] : [this.#result(r)]));
  }

  stop(): void {
    this.setTasks([]);
  }

  async #tick(r: Running): Promise<void> {
    if (r.stopped) return;
    const { task } = r;
    const netns = task.workload === undefined ? undefined : this.o.netnsOf(task.workload);
    const result =
      task.workload !== undefined && netns === undefined
        ? { ok: false, ms: 0, reason: `workload ${task.workload} is not configured on this node` }
        : await (this.o.probe ?? probe)(task, netns);
    if (r.stopped) return;
    r.last = result;
    r.run++;
    if (result.ok) {
      r.successes++;
      r.failures = 0;
    } else {
      r.failures++;
      r.successes = 0;
    }
    const next =
      r.state === "unknown" ? (result.ok ? "healthy" : "unhealthy") : r.state === "healthy" && r.failures >= task.unhealthyThreshold ? "unhealthy" : r.state === "unhealthy" && r.successes >= task.healthyThreshold ? "healthy" : r.state;
    if (next !== r.state) {
      r.state = next;
      r.since = new Date().toISOString();
      this.o.log.info({ service: task.service, backend: `${task.address}:${task.port}`, state: next, reason: result.reason }, "backend health changed");
      this.o.onChange([this.#result(r)]);
    }
    r.timer = setTimeout(() => void this.#tick(r), task.intervalMs);
  }

  #result(r: Running): HealthResult {
    return {
      service: r.task.service,
      address: r.task.address,
      port: r.task.port,
      healthy: r.state === "healthy",
      since: r.since,
      ...(r.last?.ok ? { latencyMs: Math.round(r.last.ms * 1000) / 1000 } : {}),
      ...(r.last && !r.last.ok && r.last.reason ? { reason: r.last.reason.slice(0, 200) } : {}),
    };
  }
}
