/**
 * Probes for the end-to-end tests: what a lab host's WireGuard shows (`wg show <iface> dump`),
 * whether the overlay carries ICMP (`ping`) and TCP (a Node sender and sink that compare byte count and sha256) between two hosts, what an agent
 * wrote to its state and status files and log, and small timing helpers. Everything runs inside
 * the lab's namespaces and talks only to lab addresses.
 */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { interfaceNameFor, labExec, resolveLabOptions, spawnInHost, type LabOptions } from "@weft/lab";
import type { AgentState, AgentStatus } from "@weft/agent";

// ---------------------------------------------------------------- WireGuard

export interface WgPeer {
  publicKey: string;
  /** ip:port, or undefined when WireGuard shows `(none)`. */
  endpoint: string | undefined;
  allowedIps: string[];
  /** Seconds since the epoch; 0 = never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

export interface WgDump {
  publicKey: string;
  listenPort: number;
  peers: WgPeer[];
}

export function hostInterface(opts: LabOptions, host: string): string {
  return interfaceNameFor(host, resolveLabOptions(opts).prefix);
}

/** Parses `wg show <iface> dump`: the interface line, then one tab-separated line per peer. */
export function parseWgDump(text: string): WgDump {
  const [iface, ...peerLines] = text.trim().split("\n");
  const [, publicKey = "", listenPort = "0"] = (iface ?? "").split("\t");
  const peers = peerLines
    .filter((l) => l.trim() !== "")
    .map((line): WgPeer => {
      const [key = "", , endpoint = "(none)", allowed = "", handshake = "0", rx = "0", tx = "0"] = line.split("\t");
      return {
        publicKey: key,
        endpoint: endpoint === "(none)" ? undefined : endpoint,
        allowedIps: allowed === "(none)" ? [] : allowed.split(","),
        latestHandshake: Number(handshake),
        rxBytes: Number(rx),
        txBytes: Number(tx),
      };
    });
  return { publicKey, listenPort: Number(listenPort), peers };
}

/** One peer as a failure message or a note shows it: endpoint, handshake age, bytes each way. */
export function describePeer(peer: WgPeer | undefined): string {
  const handshake = peer?.latestHandshake ? `${Math.round(Date.now() / 1000 - peer.latestHandshake)} s ago` : "never";
  return `endpoint ${peer?.endpoint ?? "none"}, handshake ${handshake}, rx ${peer?.rxBytes ?? 0} B, tx ${peer?.txBytes ?? 0} B`;
}

/** The host's WireGuard interface as `wg` shows it; undefined when the interface does not exist. */
export async function wgDump(opts: LabOptions, host: string): Promise<WgDump | undefined> {
  const res = await labExec(opts, host, ["wg", "show", hostInterface(opts, host), "dump"], { timeoutMs: 10_000 });
  return res.exitCode === 0 ? parseWgDump(res.stdout) : undefined;
}

/** Whether the host's WireGuard link exists in its namespace and is up. */
export async function linkIsUp(opts: LabOptions, host: string): Promise<boolean> {
  const res = await labExec(opts, host, ["ip", "-o", "link", "show", "dev", hostInterface(opts, host)]);
  return res.exitCode === 0 && /[<,]UP[,>]/.test(res.stdout);
}

// ---------------------------------------------------------------- probes

export interface PingResult {
  from: string;
  to: string;
  address: string;
  ok: boolean;
  rttMs: number | undefined;
  output: string;
}

/** One `ping -c 1 -W 2` from a host's namespace. */
export async function ping(opts: LabOptions, from: string, to: { name: string; address: string }): Promise<PingResult> {
  const res = await labExec(opts, from, ["ping", "-n", "-c", "1", "-W", "2", to.address], { timeoutMs: 10_000 });
  const rtt = /time=([\d.]+) ms/.exec(res.stdout)?.[1];
  return {
    from,
    to: to.name,
    address: to.address,
    ok: res.exitCode === 0,
    rttMs: rtt === undefined ? undefined : Number(rtt),
    output: `${res.stdout}${res.stderr}`.trim().split("\n").slice(-2).join(" | "),
  };
}

/**
 * A TCP sink: counts and hashes what each connection sends and, when the sender half-closes,
 * answers `{"bytes","sha256","ms"}` (ms from first to last byte). Node only, bound to one address.
 */
const SINK_JS = `
const net = require("node:net"), { createHash } = require("node:crypto");
const [host, port] = process.argv.slice(1);
const srv = net.createServer((s) => {
  const h = createHash("sha256"); let n = 0, first = 0;
  s.on("data", (d) => { if (!first) first = Date.now(); n += d.length; h.update(d); });
  s.on("end", () => s.end(JSON.stringify({ bytes: n, sha256: h.digest("hex"), ms: first ? Date.now() - first : 0 })));
  s.on("error", () => {});
});
srv.listen(Number(port), host, () => process.stdout.write("ready\\n"));
process.on("SIGTERM", () => process.exit(0));
`;

/** Sends `bytes` random bytes, half-closes, and prints the sink's answer with the sender's own hash. */
const SEND_JS = `
const net = require("node:net"), { createHash, randomBytes } = require("node:crypto");
const [host, port, bytes, ms] = process.argv.slice(1);
const data = randomBytes(Number(bytes));
const want = createHash("sha256").update(data).digest("hex");
const done = (o) => { process.stdout.write(JSON.stringify(o) + "\\n"); process.exit(0); };
let connected = false;
setTimeout(() => done({ ok: false, error: connected ? "timeout after connecting (" + (s.writableLength === 0 ? "all data handed to the kernel" : s.writableLength + " B of the last write still pending") + ", " + reply.length + " B of reply)" : "timeout connecting" }), Number(ms));
const t0 = Date.now();
const s = net.connect(Number(port), host, () => { connected = true; s.end(data); });
let reply = "";
s.on("data", (d) => (reply += d));
s.on("end", () => { try { done({ ok: true, sent: data.length, want, got: JSON.parse(reply), ms: Date.now() - t0 }); } catch { done({ ok: false, error: "bad reply: " + reply.slice(0, 80) }); } });
s.on("error", (e) => done({ ok: false, error: e.code || e.message }));
`;

export interface TcpSink {
  host: string;
  close(): Promise<void>;
}

export const TCP_SINK_PORT = 7100;

/** Starts a TCP sink on `bind:7100` in a host's namespace (the host's overlay address) and waits until it listens. */
export async function startTcpSink(opts: LabOptions, host: string, bind: string): Promise<TcpSink> {
  const child: ChildProcess = spawnInHost(opts, host, [process.execPath, "-e", SINK_JS, bind, String(TCP_SINK_PORT)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  let ready = false;
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (ready ||= d.includes("ready")));
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  };
  try {
    await waitUntil(`TCP sink on ${host} ${bind}:${TCP_SINK_PORT}`, 5000, async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${stderr.trim()}`);
      return ready;
    }, 20);
  } catch (err) {
    await close();
    throw err;
  }
  return { host, close };
}

export interface TcpResult {
  from: string;
  to: string;
  ok: boolean;
  /** Bytes the sink counted. */
  receivedBytes: number;
  /** Sender-side time from connect to the sink's answer. */
  ms: number;
  error: string | undefined;
}

/** Sends `bytes` over TCP from a host to a sink and checks the sink received exactly those bytes (count and sha256). */
export async function tcpTransfer(opts: LabOptions, from: string, to: { name: string; address: string }, bytes: number, timeoutMs = 15_000): Promise<TcpResult> {
  const res = await labExec(opts, from, [process.execPath, "-e", SEND_JS, to.address, String(TCP_SINK_PORT), String(bytes), String(timeoutMs)], {
    timeoutMs: timeoutMs + 10_000,
  });
  let out: { ok: boolean; error?: string; sent?: number; want?: string; got?: { bytes: number; sha256: string }; ms?: number };
  try {
    out = JSON.parse(res.stdout.trim().split("\n").pop() ?? "");
  } catch {
    out = { ok: false, error: `exit ${res.exitCode}: ${res.stderr.trim() || res.stdout.slice(0, 200)}` };
  }
  const received = out.got?.bytes ?? 0;
  const intact = out.ok && received === bytes && out.got?.sha256 === out.want;
  const error = out.error ?? (out.ok && !intact ? `sink got ${received} B sha256 ${out.got?.sha256.slice(0, 12)}…, sent ${out.sent} B sha256 ${out.want?.slice(0, 12)}…` : undefined);
  return { from, to: to.name, ok: intact, receivedBytes: received, ms: out.ms ?? 0, error };
}

// ---------------------------------------------------------------- agent files

/** The agent's own file formats, so these helpers cannot drift from what the agent writes. */
export type AgentStateFile = AgentState;
export type AgentStatusFile = AgentStatus;

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

export const readAgentState = (stateDir: string) => readJson<AgentStateFile>(join(stateDir, "state.json"));
export const readAgentStatus = (stateDir: string) => readJson<AgentStatusFile>(join(stateDir, "status.json"));

/** Size of a log file now, so a test can later read only what was written after this point. */
export async function logOffset(path: string): Promise<number> {
  return stat(path).then((s) => s.size).catch(() => 0);
}

export async function logSince(path: string, offset: number): Promise<string> {
  const text = await readFile(path).catch(() => Buffer.alloc(0));
  return text.subarray(offset).toString("utf8");
}

/** The `msg` of every JSON (pino) line in a log excerpt. */
export function logMessages(text: string): string[] {
  return text.split("\n").flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as { msg?: unknown };
      return typeof parsed.msg === "string" ? [parsed.msg] : [];
    } catch {
      return [];
    }
  });
}

// ---------------------------------------------------------------- timing

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true; resolves with the elapsed milliseconds. Throws on timeout with the last error. */
export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 100): Promise<number> {
  const started = Date.now();
  let lastErr: unknown;
  for (;;) {
    try {
      if (await check()) return Date.now() - started;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr instanceof Error ? ` (last error: ${lastErr.message})` : ""}`);
    }
    await sleep(intervalMs);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** min / median / max of a list of numbers, formatted for a report line. */
export function spread(values: number[], unit = "ms", digits = 2): string {
  if (values.length === 0) return "n/a";
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `min ${sorted[0]!.toFixed(digits)} / median ${at(0.5).toFixed(digits)} / max ${sorted[sorted.length - 1]!.toFixed(digits)} ${unit} (n=${values.length})`;
}

/**
 * The controller's log line (a complete JSON line) carrying `reference` (a refusal's `ref-…`), from
 * `<logDir>/controller.log`. The log reaches its file on its own schedule, so a line may land a
 * moment after the answer that named it: it is looked for up to `timeoutMs`.
 */
export async function controllerLogLine(logDir: string, reference: string, timeoutMs = 5_000): Promise<string> {
  if (reference === "") throw new Error("no reference to look for in the controller's log");
  let line: string | undefined;
  await waitUntil(`the controller's log line for ${reference}`, timeoutMs, async () => {
    line = (await readFile(join(logDir, "controller.log"), "utf8")).split("\n").find((l) => l.includes(reference) && l.endsWith("}"));
    return line !== undefined;
  }, 50);
  return line!;
}
