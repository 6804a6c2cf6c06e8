/**
 * iperf3 inside the datapath benchmark's namespaces: servers bound to one address each, TCP
 * throughput (`-J`, one stream), UDP small-datagram packet rate (`-u -l 64 -b 0`) and a short
 * connect probe that tells an allowed flow from a dropped one.
 */
import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { BenchError } from "./errors.js";
import { inNs, run, spawnInNs, stopChild } from "./datapath-sys.js";
import { parseIperfUdpJson, type UdpResult } from "./datapath-parse.js";
import { IperfReportedError, parseIperfJson, type IperfResult } from "./parse.js";

export interface IperfServer {
  ns: string;
  address: string;
  port: number;
  process: ChildProcess;
}

/** `iperf3 -s -B address -p port` in ns, once it listens. */
export async function startServer(ns: string, address: string, port: number): Promise<IperfServer> {
  const child = spawnInNs(ns, ["iperf3", "-s", "-B", address, "-p", String(port)]);
  const server = { ns, address, port, process: child };
  for (const deadline = Date.now() + 5000; ; ) {
    if (child.exitCode !== null) throw new BenchError(`iperf3 -s -B ${address} -p ${port} in ${ns} exited with ${child.exitCode}`);
    const ss = await run(inNs(ns, ["ss", "-Hltn", `sport = :${port}`]));
    if (ss.stdout.includes(`${address}:${port}`)) return server;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new BenchError(`iperf3 server in ${ns} did not listen on ${address}:${port} within 5 s`);
    }
    await sleep(50);
  }
}

export const stopServer = (s: IperfServer): Promise<void> => stopChild(s.process);

/** Runs an iperf3 client; one retry when the server was still busy with the previous test. */
async function client<T>(ns: string, argv: string[], seconds: number, parse: (stdout: string) => T, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const res = await run(inNs(ns, argv), { timeoutMs: (seconds + 20) * 1000 });
    try {
      return parse(res.stdout);
    } catch (err) {
      const why = err instanceof IperfReportedError ? err.message : `exit ${res.exitCode ?? res.signal}, ${res.stderr.trim() || "no JSON"}`;
      signal?.throwIfAborted();
      if (attempt >= 2) throw new BenchError(`${argv.join(" ")} in ${ns}: ${why}`, { cause: err });
      await sleep(1000);
    }
  }
}

/** TCP, one stream, `seconds` long, from ns to address:port. */
export function tcpThroughput(ns: string, address: string, port: number, seconds: number, signal?: AbortSignal): Promise<IperfResult> {
  return client(ns, ["iperf3", "-c", address, "-p", String(port), "-t", String(seconds), "-J"], seconds, parseIperfJson, signal);
}

/**
 * UDP datagrams of `length` bytes offered at `rate` datagrams per second (0: as fast as the
 * sender can, `-b 0`); what counts is the rate the receiver got.
 */
export function udpPacketRate(ns: string, address: string, port: number, seconds: number, length: number, rate: number, signal?: AbortSignal): Promise<UdpResult> {
  const bitrate = String(Math.round(rate * length * 8));
  return client(ns, ["iperf3", "-c", address, "-p", String(port), "-t", String(seconds), "-u", "-l", String(length), "-b", bitrate, "-J"], seconds, parseIperfUdpJson, signal);
}

/**
 * Whether a 1-second TCP test to address:port gets through: false when the connection times out
 * (its SYN dropped) within `connectTimeoutMs`. A server must listen there.
 */
export async function tcpProbe(ns: string, address: string, port: number, connectTimeoutMs = 1500): Promise<{ passed: boolean; detail: string }> {
  const res = await run(inNs(ns, ["iperf3", "-c", address, "-p", String(port), "-t", "1", "--connect-timeout", String(connectTimeoutMs), "-J"]), { timeoutMs: 20_000 });
  try {
    const r = parseIperfJson(res.stdout);
    return { passed: r.receivedBitsPerSecond > 0, detail: `${(r.receivedBitsPerSecond / 1e6).toFixed(1)} Mbit/s` };
  } catch (err) {
    return { passed: false, detail: (err as Error).message };
  }
}
