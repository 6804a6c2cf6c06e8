/**
 * The embedded NATS server: with no NATS URL configured, the controller runs
 * `nats-server` as a child process with JetStream, its data under
 * `<stateDir>/nats/jetstream`, and the authority's JWT trust chain, so no
 * connection is anonymous. The account resolver is `full` with its directory in
 * `<stateDir>/nats/jwt`, so account JWTs pushed at run time (revocations) persist;
 * the config preloads the authority's current JWTs on every start. Readiness is the
 * monitor endpoint's `/healthz` (JetStream included), served on 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Authority } from "./authority.js";
import { findNatsServer } from "./binary.js";
import { NatsServerNotFoundError, NatsServerStartError } from "./errors.js";
import { silentLogger, type Logger } from "./logger.js";

export interface EmbeddedNatsOptions {
  /** Controller state dir; the server's config, pid file and JetStream data go in `<stateDir>/nats`. */
  stateDir: string;
  /** Client listen address. Default 127.0.0.1; use 0.0.0.0 so agents on other hosts can connect. */
  host?: string;
  /** Client port; 0 picks a free one. Default 4222. */
  port?: number;
  /** Monitor (HTTP) port on 127.0.0.1, used for readiness; 0 (default) picks a free one. */
  monitorPort?: number;
  authority: Authority;
  /** Receives the server's log lines; pass one bound to the component, e.g. `log.child({ component: "nats" })`. */
  logger?: Logger;
  /** JetStream server name; keep it stable across restarts. Default "weft-controller". */
  serverName?: string;
  /** Path or name of the nats-server binary. Default: see binary.ts (WEFT_NATS_SERVER, .tools/bin, the package's, PATH). */
  binary?: string;
  /**
   * TLS for client connections: the server certificate (chained to the controller's CA) and its
   * key, as files. Clients must then connect with TLS (`tls_required`); `url` is `tls://…`.
   * Without it the server listens in plain text (tests of the NATS layer only).
   */
  tls?: { certFile: string; keyFile: string };
  /** JetStream limits: max file store and memory store in bytes. Default 1 GiB and 64 MiB. */
  maxFileStore?: number;
  maxMemoryStore?: number;
  /** How long to wait for readiness. Default 10 s. */
  readyTimeoutMs?: number;
  /** Called once if the server exits without stop() having been called. */
  onUnexpectedExit?: (exit: NatsServerExit) => void;
}

export interface NatsServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines the server wrote (it logs to stderr). */
  stderrTail: string[];
}

export interface EmbeddedNats {
  /** Client URL for local connections (127.0.0.1 when listening on a wildcard address). */
  url: string;
  port: number;
  monitorUrl: string;
  pid: number;
  /** Resolves when the process exits, expectedly or not. */
  exited: Promise<NatsServerExit>;
  /** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
  /** SIGHUP: the server rereads its config and TLS certificate (after a renewal). */
  reload(): void;
}

const TAIL_LINES = 20;
const STOP_GRACE_MS = 10_000;

/** Starts nats-server and resolves once it serves clients with JetStream enabled. */
export async function startEmbeddedNats(opts: EmbeddedNatsOptions): Promise<EmbeddedNats> {
  const log = opts.logger ?? silentLogger;
  const host = opts.host ?? "127.0.0.1";
  const binary = await findNatsServer(opts.binary);
  const natsDir = join(opts.stateDir, "nats");
  await mkdir(natsDir, { recursive: true, mode: 0o700 });
  await chmod(natsDir, 0o700);
  const pidFile = join(natsDir, "nats-server.pid");
  const confFile = join(natsDir, "nats-server.conf");
  await stopStaleServer(pidFile, confFile, log);

  const port = opts.port === 0 ? await freePort(host) : (opts.port ?? 4222);
  const monitorPort = opts.monitorPort === undefined || opts.monitorPort === 0 ? await freePort("127.0.0.1") : opts.monitorPort;
  const conf = serverConfig({
    serverName: opts.serverName ?? "weft-controller",
    host,
    port,
    monitorPort,
    pidFile,
    // nats-server appends "jetstream" to store_dir: data lands in <stateDir>/nats/jetstream.
    storeDir: natsDir,
    // full resolver: account JWTs pushed at run time (revocations) persist in <stateDir>/nats/jwt.
    authFragment: opts.authority.serverConfigFragment({ resolverDir: join(natsDir, "jwt") }),
    ...(opts.tls ? { tls: opts.tls } : {}),
    maxFileStore: opts.maxFileStore ?? DEFAULT_MAX_FILE_STORE,
    maxMemoryStore: opts.maxMemoryStore ?? DEFAULT_MAX_MEMORY_STORE,
  });
  await writeFile(confFile, conf, { mode: 0o600 });
  await chmod(confFile, 0o600);

  const child = spawn(binary, ["-c", confFile], { stdio: ["ignore", "pipe", "pipe"] });
  const tail: string[] = [];
  let stopping = false;
  const exited = new Promise<NatsServerExit>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal, stderrTail: [...tail] }));
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", () => resolve());
    child.once("error", (err: NodeJS.ErrnoException) => {
      reject(err.code === "ENOENT" ? new NatsServerNotFoundError([binary], { cause: err }) : err);
    });
  });
  pipeLogs(child, log, tail);
  await spawned;
  child.on("error", (err) => log.error({ pid: child.pid, err: err.message }, "nats-server process error"));
  const pid = child.pid ?? -1;
  log.info({ pid, host, port, binary }, "nats-server started");

  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  try {
    await waitReady(monitorUrl, exited, opts.readyTimeoutMs ?? 10_000, tail);
  } catch (err) {
    stopping = true;
    await terminate(child, exited);
    throw err;
  }

  void exited.then((exit) => {
    if (stopping) {
      log.info({ pid, code: exit.code, signal: exit.signal }, "nats-server stopped");
      return;
    }
    log.error({ pid, code: exit.code, signal: exit.signal, stderrTail: exit.stderrTail }, "nats-server exited unexpectedly");
    opts.onUnexpectedExit?.(exit);
  });

  const clientHost = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  return {
    url: `${opts.tls ? "tls" : "nats"}://${clientHost.includes(":") ? `[${clientHost}]` : clientHost}:${port}`,
    port,
    monitorUrl,
    pid,
    exited,
    stop: async () => {
      stopping = true;
      await terminate(child, exited);
    },
    reload: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGHUP");
    },
  };
}

interface ServerConfigParts {
  serverName: string;
  host: string;
  port: number;
  monitorPort: number;
  pidFile: string;
  storeDir: string;
  authFragment: string;
  tls?: { certFile: string; keyFile: string };
  maxFileStore: number;
  maxMemoryStore: number;
}

/** JetStream's file store limit when none is configured: every bucket's max bytes fit in it. */
export const DEFAULT_MAX_FILE_STORE = 1024 * 1024 * 1024;
export const DEFAULT_MAX_MEMORY_STORE = 64 * 1024 * 1024;

/** The nats-server config file text (exported for tests and for `weft controller` dry runs). */
export function serverConfig(p: ServerConfigParts): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    "# Written by the Weft controller on every start; edits are overwritten.",
    `server_name: ${q(p.serverName)}`,
    `host: ${q(p.host)}`,
    `port: ${p.port}`,
    `http: ${q(`127.0.0.1:${p.monitorPort}`)}`,
    `pid_file: ${q(p.pidFile)}`,
    "jetstream {",
    `  store_dir: ${q(p.storeDir)}`,
    `  max_file_store: ${p.maxFileStore}`,
    `  max_memory_store: ${p.maxMemoryStore}`,
    "}",
    ...(p.tls
      ? [
          "# Clients must use TLS; the certificate chains to the controller's CA, which agents pin.",
          "tls {",
          `  cert_file: ${q(p.tls.certFile)}`,
          `  key_file: ${q(p.tls.keyFile)}`,
          // Seconds a client has to finish its handshake. After a restart the whole fleet handshakes
          // at once; a handshake cut off at the limit is retried, so its work is lost (scale
          // benchmark at 1,000 agents: 390 cut off at 5 s).
          "  timeout: 10",
          "}",
        ]
      : []),
    "",
    p.authFragment,
  ].join("\n");
}

function pipeLogs(child: ChildProcess, log: Logger, tail: string[]): void {
  // The startup banner (version, JetStream ASCII art, limits) goes to debug; from
  // "Server is ready" on, lines keep their level.
  let ready = false;
  const onLine = (line: string) => {
    if (line.trim() === "") return;
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    // "[pid] 2024/01/02 15:04:05.000000 [INF] message"
    const m = /^\[\d+\] \S+ \S+ \[(\w+)\] (.*)$/.exec(line);
    const level = m?.[1] ?? "INF";
    const msg = m?.[2] ?? line;
    const fields = { pid: child.pid };
    if (msg === "Server is ready") ready = true;
    switch (ready || level === "WRN" || level === "ERR" || level === "FTL" ? level : "DBG") {
      case "DBG":
      case "TRC":
        log.debug(fields, msg);
        break;
      case "WRN":
        log.warn(fields, msg);
        break;
      case "ERR":
      case "FTL":
        log.error(fields, msg);
        break;
      default:
        log.info(fields, msg);
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on("line", onLine);
  }
}

async function waitReady(monitorUrl: string, exited: Promise<NatsServerExit>, timeoutMs: number, tail: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exit: NatsServerExit | undefined;
  void exited.then((e) => (exit = e));
  for (;;) {
    if (exit !== undefined) {
      throw new NatsServerStartError(`exited while starting (code ${exit.code}, signal ${exit.signal})`, exit.code, exit.stderrTail);
    }
    if (await healthy(monitorUrl)) return;
    if (Date.now() > deadline) {
      throw new NatsServerStartError(`not ready after ${timeoutMs} ms`, null, [...tail]);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function healthy(monitorUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${monitorUrl}/healthz`, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

async function terminate(child: ChildProcess, exited: Promise<NatsServerExit>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A controller killed without cleanup leaves its nats-server running on the same
 * store dir and port. If the pid file names a live nats-server started with our
 * config file, stop it first.
 */
async function stopStaleServer(pidFile: string, confFile: string, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt((await readFile(pidFile, "utf8")).trim(), 10);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  let cmdline: string;
  try {
    cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ");
  } catch {
    return; // not running (or not Linux)
  }
  if (!cmdline.includes("nats-server") || !cmdline.includes(confFile)) return;
  log.warn({ pid }, "stopping a nats-server left over from a previous controller");
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_GRACE_MS;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** A free TCP port on host (there is a small race until the server binds it). */
async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
