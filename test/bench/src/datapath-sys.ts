/**
 * Commands for the datapath benchmark, which needs no lab: run a program in the root namespace or
 * in one of the benchmark's own network namespaces (`ip netns exec`), start a long-lived one in
 * its own session, and sweep away everything carrying the benchmark's prefix — the namespaces with
 * every process inside them, stale wireguard-go sockets, the private bpffs — on success, failure,
 * Ctrl-C, and at the start of a run after a killed one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BenchError } from "./errors.js";
import { isAlive } from "./pidlock.js";

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to stdin (then closed). */
  input?: string;
  /** Killed (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
}

/** Runs argv to completion; never throws for a non-zero exit (see must). */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], timeout: opts.timeoutMs ?? 60_000, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => undefined);
    child.on("error", (e) => resolve({ exitCode: null, signal: null, stdout, stderr: `${stderr}cannot run ${file}: ${e.message}` }));
    child.on("close", (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}

/** Runs argv and returns its stdout; BenchError naming the command when it fails. */
export async function must(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.exitCode !== 0) throw new BenchError(`${argv.join(" ")}: exit ${r.exitCode ?? r.signal}: ${r.stderr.trim().split("\n").slice(-3).join(" ") || "no output"}`);
  return r.stdout;
}

/** argv run inside network namespace `ns`. */
export const inNs = (ns: string, argv: readonly string[]): string[] => ["ip", "netns", "exec", ns, ...argv];

/**
 * Starts a long-lived program in `ns`, detached in its own session: a Ctrl-C aimed at the
 * benchmark does not kill it mid-measurement, and teardown stops it by pid. Output is discarded.
 */
export function spawnInNs(ns: string, argv: readonly string[]): ChildProcess {
  const [file, ...args] = inNs(ns, argv) as [string, ...string[]];
  const child = spawn(file, args, { stdio: "ignore", detached: true });
  child.on("error", () => undefined);
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Network namespaces whose name starts with `prefix`. */
export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  const out = await run(["ip", "netns", "list"]);
  return out.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.startsWith(prefix));
}

/**
 * Stops every process inside the namespace (they are all the benchmark's: iperf3, wireguard-go),
 * by pid, SIGTERM then SIGKILL, and deletes the namespace. Veths and TUN devices go with it.
 */
export async function removeNamespace(ns: string): Promise<void> {
  const pids = async () =>
    (await run(["ip", "netns", "pids", ns])).stdout
      .split("\n")
      .map((l) => Number(l.trim()))
      .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
  for (const [signal, waitMs] of [["SIGTERM", 2000], ["SIGKILL", 1000]] as const) {
    const live = await pids();
    if (live.length === 0) break;
    for (const pid of live) {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
    for (let t = 0; t < waitMs && live.some(isAlive); t += 50) await sleep(50);
  }
  await run(["ip", "netns", "del", ns]);
}

/** Whether `dir` is a mount point (listed in /proc/self/mounts). */
export function isMountPoint(dir: string): boolean {
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .some((l) => l.split(" ")[1] === dir);
}

export interface SweepOptions {
  /** Namespace and wireguard-go interface prefix, e.g. `wdb-`. */
  prefix: string;
  /** The benchmark's own directory (holds the bpffs mount); removed. */
  runDir: string;
  /** The bpffs mounted inside runDir; unmounted first. */
  bpffs: string;
}

/**
 * Removes what the benchmark makes: namespaces `<prefix>*` (and their processes), wireguard-go
 * UAPI sockets `<prefix>*.sock` whose daemon is gone, the bpffs and runDir. Safe when none exists.
 * Returns problems (never throws), so a teardown carries on.
 */
export async function sweep(o: SweepOptions): Promise<string[]> {
  const problems: string[] = [];
  for (const ns of await namespacesWithPrefix(o.prefix)) {
    await removeNamespace(ns).catch((e: unknown) => problems.push(`namespace ${ns}: ${(e as Error).message}`));
  }
  const uapi = "/var/run/wireguard";
  if (existsSync(uapi)) {
    for (const name of readdirSync(uapi)) {
      if (name.startsWith(o.prefix) && name.endsWith(".sock")) await rm(join(uapi, name), { force: true });
    }
  }
  if (isMountPoint(o.bpffs)) {
    const r = await run(["umount", o.bpffs]);
    if (r.exitCode !== 0) problems.push(`umount ${o.bpffs}: ${r.stderr.trim()}`);
  }
  if (!isMountPoint(o.bpffs)) await rm(o.runDir, { recursive: true, force: true });
  return problems;
}
