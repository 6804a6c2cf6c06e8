/**
 * Reachability probes that need nothing but Node (the lab machine may have no ping or nc): a
 * UDP+TCP echo server that answers with the source address and port it saw, and a client that
 * reports that answer. "Who did the packet appear to come from" is what proves NAT works.
 */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { labExec, spawnInHost } from "./exec.js";
import { LabError } from "./errors.js";
import type { LabOptions } from "./options.js";

/** Answers every UDP datagram and TCP connection on a port with `{"address","port"}` of the peer (and `"name"` when given one). */
const SERVER_JS = `
const dgram = require("node:dgram"), net = require("node:net");
const port = Number(process.argv[1]);
const name = process.argv[2];
let listening = 0;
const ready = () => { if (++listening === 2) process.stdout.write("ready\\n"); };
const u = dgram.createSocket("udp4");
u.on("message", (m, r) => u.send(JSON.stringify({ address: r.address, port: r.port, name }), r.port, r.address));
u.bind(port, "0.0.0.0", ready);
const t = net.createServer((s) => { s.on("error", () => {}); s.end(JSON.stringify({ address: s.remoteAddress, port: s.remotePort, name })); });
t.listen(port, "0.0.0.0", ready);
process.on("SIGTERM", () => process.exit(0));
`;

/** Probes address:port over UDP (retrying every 200 ms) or TCP; prints one JSON result line. */
const CLIENT_JS = `
const [proto, host, port, ms] = process.argv.slice(1);
const t0 = Date.now();
const done = (o) => { process.stdout.write(JSON.stringify(o) + "\\n"); process.exit(0); };
setTimeout(() => done({ ok: false, error: "timeout" }), Number(ms));
const reply = (buf) => {
  try { done({ ok: true, from: JSON.parse(String(buf)), rttMs: Date.now() - t0 }); }
  catch { done({ ok: false, error: "bad reply: " + String(buf).slice(0, 80) }); }
};
const fail = (e) => done({ ok: false, error: e.code || e.message });
if (proto === "udp") {
  const s = require("node:dgram").createSocket("udp4");
  s.on("error", fail);
  s.on("message", reply);
  s.connect(Number(port), host, () => { const send = () => s.send("probe", (e) => e && fail(e)); send(); setInterval(send, 200); });
} else {
  const s = require("node:net").connect(Number(port), host);
  let b = "";
  s.on("data", (d) => (b += d));
  s.on("end", () => reply(b));
  s.on("error", fail);
}
`;

export interface EchoServer {
  host: string;
  port: number;
  process: ChildProcess;
  /** Stops the server and waits for it to exit. */
  close(): Promise<void>;
}

export type EchoResult =
  | { ok: true; from: { address: string; port: number; name?: string }; rttMs: number }
  | { ok: false; error: string };

/** Starts an echo server on `host` (UDP and TCP on the same port) and waits until it listens. */
export async function startEchoServer(
  opts: LabOptions,
  host: string,
  { port = 7000, readyTimeoutMs = 5000, name }: { port?: number; readyTimeoutMs?: number; name?: string } = {},
): Promise<EchoServer> {
  const child = spawnInHost(opts, host, [process.execPath, "-e", SERVER_JS, String(port), ...(name !== undefined ? [name] : [])], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready after ${readyTimeoutMs} ms`)), readyTimeoutMs);
      child.stdout?.setEncoding("utf8").on("data", (d: string) => {
        if (d.includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`exited with ${code}`));
      });
      child.on("error", reject);
    });
  } catch (err) {
    await close().catch(() => {});
    throw new LabError(`echo server on ${host}:${port}: ${(err as Error).message}${stderr ? `: ${stderr.trim()}` : ""}`, {
      cause: err,
    });
  }
  return { host, port, process: child, close };
}

/** Sends one probe from `host` to address:port and reports the source the server saw. */
export async function echoProbe(
  opts: LabOptions,
  host: string,
  { address, port, protocol = "udp", timeoutMs = 1500 }: { address: string; port: number; protocol?: "udp" | "tcp"; timeoutMs?: number },
): Promise<EchoResult> {
  const argv = [process.execPath, "-e", CLIENT_JS, protocol, address, String(port), String(timeoutMs)];
  const res = await labExec(opts, host, argv, { timeoutMs: timeoutMs + 10_000 });
  const line = res.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as EchoResult;
  } catch {
    throw new LabError(`echo probe from ${host} to ${address}:${port}: exit ${res.exitCode}: ${res.stderr.trim() || line}`);
  }
}
