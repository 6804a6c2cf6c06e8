/**
 * Traffic between lab workloads for the datapath tests: an echo server on several TCP ports, a
 * TCP probe that tells "connected" from "timed out" (a dropped SYN) and "refused", a long-lived
 * TCP flow that must survive an agent restart, counted pings with a payload pattern, and
 * tcpdump captures on the underlay. Everything runs in the lab's namespaces only.
 */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { labExec, spawnInHost, type LabOptions } from "@weft/lab";
import { waitUntil } from "./mesh.js";

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stop(): Promise<void>;
}

/** Starts argv in a lab node; resolves once stdout contains `readyText` (if given). */
export async function spawnReady(opts: LabOptions, node: string, argv: string[], readyText?: string, timeoutMs = 5000, readyOn: "stdout" | "stderr" = "stdout"): Promise<Spawned> {
  const child = spawnInHost(opts, node, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  };
  if (readyText !== undefined) {
    try {
      await waitUntil(`${argv[0]} ready on ${node}`, timeoutMs, async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${err.trim()}`);
        return (readyOn === "stdout" ? out : err).includes(readyText);
      }, 20);
    } catch (e) {
      await stop();
      throw e;
    }
  }
  return { child, stdout: () => out, stop };
}

/** Echoes every connection on each port until SIGTERM. */
const ECHO_JS = `
const net = require("node:net");
const ports = process.argv.slice(1).map(Number);
let ready = 0;
for (const port of ports) {
  const srv = net.createServer((s) => { s.on("data", (d) => s.write(d)); s.on("end", () => s.end()); s.on("error", () => {}); });
  srv.listen(port, "0.0.0.0", () => { if (++ready === ports.length) process.stdout.write("ready\\n"); });
}
process.on("SIGTERM", () => process.exit(0));
`;

export function startEcho(opts: LabOptions, node: string, ports: number[]): Promise<Spawned> {
  return spawnReady(opts, node, [process.execPath, "-e", ECHO_JS, ...ports.map(String)], "ready");
}

export type ProbeOutcome = "open" | "timeout" | "refused" | "error";

/** Connects, sends a line and waits for its echo. */
const PROBE_JS = `
const net = require("node:net");
const [host, port, ms] = process.argv.slice(1);
const done = (o) => { process.stdout.write(o + "\\n"); process.exit(0); };
setTimeout(() => done("timeout"), Number(ms));
const s = net.connect(Number(port), host, () => s.write("weft\\n"));
s.on("data", () => done("open"));
s.on("error", (e) => done(e.code === "ECONNREFUSED" ? "refused" : "error:" + (e.code || e.message)));
`;

export async function tcpProbe(opts: LabOptions, from: string, address: string, port: number, timeoutMs = 1500): Promise<ProbeOutcome> {
  const res = await labExec(opts, from, [process.execPath, "-e", PROBE_JS, address, String(port), String(timeoutMs)], { timeoutMs: timeoutMs + 10_000 });
  const line = res.stdout.trim().split("\n").pop() ?? "";
  if (line === "open" || line === "timeout" || line === "refused") return line;
  return "error";
}

/**
 * One TCP connection writing 512 bytes every 20 ms and reading the echo back until SIGTERM;
 * then prints {sent, echoed, error}. Any reset or stall shows up as an error or missing bytes.
 */
const LONG_FLOW_JS = `
const net = require("node:net");
const [host, port] = process.argv.slice(1);
let sent = 0, echoed = 0, error = null, timer;
const chunk = Buffer.alloc(512, 0x77);
const s = net.connect(Number(port), host, () => {
  process.stdout.write("ready\\n");
  timer = setInterval(() => { s.write(chunk); sent += chunk.length; }, 20);
});
s.on("data", (d) => (echoed += d.length));
s.on("error", (e) => { error = e.code || e.message; clearInterval(timer); });
s.on("close", () => { if (!error) error = "closed by peer"; clearInterval(timer); });
process.on("SIGTERM", () => {
  clearInterval(timer);
  const deadline = Date.now() + 3000;
  const finish = () => {
    if (echoed >= sent || error || Date.now() > deadline) { process.stdout.write(JSON.stringify({ sent, echoed, error }) + "\\n"); process.exit(0); }
    setTimeout(finish, 20);
  };
  finish();
});
`;

export interface LongFlowResult {
  sent: number;
  echoed: number;
  error: string | null;
}

export async function startLongFlow(opts: LabOptions, from: string, address: string, port: number): Promise<{ finish(): Promise<LongFlowResult> }> {
  const p = await spawnReady(opts, from, [process.execPath, "-e", LONG_FLOW_JS, address, String(port)], "ready");
  return {
    async finish() {
      await p.stop();
      const last = p.stdout().trim().split("\n").pop() ?? "";
      try {
        return JSON.parse(last) as LongFlowResult;
      } catch {
        return { sent: 0, echoed: 0, error: `no result: ${last}` };
      }
    },
  };
}

/** `ping -c count` with an 8-byte payload pattern; returns how many replies came back. */
export async function pingCount(opts: LabOptions, from: string, address: string, count: number, o: { intervalS?: number; patternHex?: string } = {}): Promise<number> {
  const res = await labExec(
    opts,
    from,
    ["ping", "-n", "-q", "-c", String(count), "-i", String(o.intervalS ?? 0.05), "-W", "1", ...(o.patternHex ? ["-p", o.patternHex] : []), address],
    { timeoutMs: count * 1000 + 15_000 },
  );
  const m = /(\d+) received/.exec(res.stdout);
  return m?.[1] ? Number(m[1]) : 0;
}

export interface Capture {
  file: string;
  /** Stops tcpdump and returns the capture's bytes and its decoded text (`tcpdump -r -nn -v`). */
  stop(): Promise<{ raw: Buffer; text: string }>;
}

/** Captures on `iface` inside a lab node (a gateway or inet: the underlay) into a temp pcap. */
export async function capture(opts: LabOptions, node: string, iface: string, filter: string[] = []): Promise<Capture> {
  const file = join(tmpdir(), `weft-e2e-${node}-${iface}-${process.pid}-${Date.now()}.pcap`);
  const p = await spawnReady(opts, node, ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-s", "0", "-w", file, ...filter], "listening on", 5000, "stderr");
  // "listening on" comes just before the capture loop starts; let it settle.
  await new Promise((r) => setTimeout(r, 300));
  return {
    file,
    async stop() {
      await new Promise((r) => setTimeout(r, 300));
      await p.stop();
      const raw = await readFile(file);
      const decoded = await labExec(opts, node, ["tcpdump", "-r", file, "-nn", "-v"], { timeoutMs: 30_000 });
      await rm(file, { force: true });
      return { raw, text: decoded.stdout };
    },
  };
}

/** How many times `needle` occurs in `haystack`. */
export function occurrences(haystack: Buffer, needle: Buffer): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}
