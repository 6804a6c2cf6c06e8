/**
 * One throughput and one latency measurement between two lab hosts: `iperf3 -c` (TCP, JSON
 * output) and `ping -n`, both run inside the sender's namespace with labExec; and the iperf3
 * servers they talk to, started with spawnInHost and bound to one address each.
 */
import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { labExec, stopProcess, spawnInHost, type LabOptions } from "@weft/lab";
import { BenchError } from "./errors.js";
import { IperfReportedError, parseIperfJson, parsePing, type IperfResult, type PingResult } from "./parse.js";

export interface IperfServer {
  host: string;
  address: string;
  port: number;
  process: ChildProcess;
}

/** Starts `iperf3 -s` bound to address:port in host's namespace and waits until it listens. */
export async function startIperfServer(opts: LabOptions, host: string, address: string, port: number): Promise<IperfServer> {
  const child = spawnInHost(opts, host, ["iperf3", "-s", "-B", address, "-p", String(port)], { stdio: "ignore" });
  const server = { host, address, port, process: child };
  const deadline = Date.now() + 5000;
  for (;;) {
    if (child.exitCode !== null) throw new BenchError(`iperf3 -s -B ${address} -p ${port} on ${host} exited with ${child.exitCode}`);
    const ss = await labExec(opts, host, ["ss", "-Hltn", `sport = :${port}`]);
    if (ss.stdout.includes(`${address}:${port}`)) return server;
    if (Date.now() > deadline) {
      await stopIperfServer(server);
      throw new BenchError(`iperf3 server on ${host} did not listen on ${address}:${port} within 5 s`);
    }
    await sleep(50);
  }
}

export async function stopIperfServer(server: IperfServer): Promise<void> {
  await stopProcess(server.process, "SIGTERM", 3000);
}

/** TCP throughput from `from` to address:port for `seconds`. One retry if the server was busy. */
export async function measureThroughput(opts: LabOptions, from: string, address: string, port: number, seconds: number, signal?: AbortSignal): Promise<IperfResult> {
  const argv = ["iperf3", "-c", address, "-p", String(port), "-t", String(seconds), "-J"];
  for (let attempt = 1; ; attempt++) {
    const res = await labExec(opts, from, argv, { timeoutMs: (seconds + 20) * 1000 });
    try {
      return parseIperfJson(res.stdout);
    } catch (err) {
      const why = err instanceof IperfReportedError ? err.message : `exit ${res.exitCode ?? res.signal}, ${res.stderr.trim() || "no JSON"}`;
      signal?.throwIfAborted();
      if (attempt >= 2) throw new BenchError(`${argv.join(" ")} on ${from}: ${why}`, { cause: err });
      await sleep(1000);
    }
  }
}

/** `count` pings every `intervalS` seconds from `from` to address. Loss is reported, not thrown. */
export async function measureLatency(opts: LabOptions, from: string, address: string, count: number, intervalS: number): Promise<PingResult> {
  const deadlineS = Math.ceil(count * intervalS + 5);
  const argv = ["ping", "-n", "-c", String(count), "-i", String(intervalS), "-w", String(deadlineS), address];
  const res = await labExec(opts, from, argv, { timeoutMs: (deadlineS + 5) * 1000 });
  const parsed = parsePing(res.stdout);
  if (parsed.transmitted === 0) throw new BenchError(`${argv.join(" ")} on ${from}: exit ${res.exitCode ?? res.signal}, ${res.stderr.trim() || "no output"}`);
  return parsed;
}
