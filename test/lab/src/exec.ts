/**
 * Running commands inside lab nodes: `labExec` runs one to completion and returns its exit code
 * and output; `spawnInHost` starts a long-running process (the agent, a test server) and hands
 * back the ChildProcess. Both use `ip netns exec <netns> argv…` — argv arrays, never a shell.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { existsSync } from "node:fs";
import { hostCgroup, inCgroup } from "./cgroups.js";
import { LabNotUpError } from "./errors.js";
import { resolveHost, type LabNode } from "./hosts.js";
import { resolveLabOptions, type LabOptions } from "./options.js";
import { runRaw, type RunResult } from "./run.js";
import { labTopology, labWorkloads } from "./topology.js";

export interface LabExecOptions {
  /** `pipe` (default) captures stdout/stderr; `inherit` streams them to this process. */
  stdio?: "pipe" | "inherit";
  /** Extra environment variables, merged over this process's environment. */
  env?: Record<string, string>;
  /** Written to stdin (pipe mode only). */
  input?: string;
  /** Kill the command after this long (default 30 s). */
  timeoutMs?: number;
  /**
   * Run inside the host's cgroup (hosts and workloads; default true), where the host agent's
   * socket programs balance connections to services. false: outside it (the tc fallback's case).
   */
  cgroup?: boolean;
}

/** Exit code (null if killed by a signal), signal, and captured output ("" with `inherit`). */
export type LabExecResult = RunResult;

/**
 * The cgroup a command started in `node` joins: its host's (a workload's host's) when that exists;
 * none for gateways, inet and the controller.
 */
export function nodeCgroup(opts: LabOptions, node: LabNode): string | undefined {
  const o = resolveLabOptions(opts);
  let host: string | undefined;
  if (node.kind === "host") host = node.name;
  else if (node.kind === "workload") host = labWorkloads(labTopology({ prefix: o.prefix })).find((w) => w.node === node.name)?.host.name;
  const dir = host === undefined ? undefined : hostCgroup(o, host);
  return dir !== undefined && existsSync(dir) ? dir : undefined;
}

/** argv, wrapped to join the node's cgroup first unless `cgroup` is false. */
function placed(opts: LabOptions, node: LabNode, argv: readonly string[], cgroup: boolean | undefined): string[] {
  const dir = cgroup === false ? undefined : nodeCgroup(opts, node);
  return dir === undefined ? [...argv] : inCgroup(dir, argv);
}

/**
 * Resolves a node name (`aws-1`, `ctl`, `inet`, `gw-aws`, or a namespace name) and checks its
 * namespace exists. Throws UnknownHostError or LabNotUpError.
 */
export function labNode(opts: LabOptions, host: string): LabNode {
  const o = resolveLabOptions(opts);
  const node = resolveHost(labTopology(o), host);
  if (!existsSync(`/run/netns/${node.netns}`)) throw new LabNotUpError(node.netns);
  return node;
}

/** Runs argv inside a node's namespace to completion. A non-zero exit is returned, not thrown. */
export async function labExec(
  opts: LabOptions,
  host: string,
  argv: readonly string[],
  execOpts: LabExecOptions = {},
): Promise<LabExecResult> {
  const node = labNode(opts, host);
  const full = placed(opts, node, ["ip", "netns", "exec", node.netns, ...argv], execOpts.cgroup);
  const env = { ...process.env, ...execOpts.env };
  if (execOpts.stdio === "inherit") {
    const [file, ...args] = full as [string, ...string[]];
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { stdio: "inherit", env, timeout: execOpts.timeoutMs ?? 30_000 });
      child.on("error", reject);
      child.on("close", (exitCode, signal) => resolve({ exitCode, signal, stdout: "", stderr: "" }));
    });
  }
  return runRaw(full, {
    env,
    ...(execOpts.input !== undefined ? { input: execOpts.input } : {}),
    ...(execOpts.timeoutMs !== undefined ? { timeoutMs: execOpts.timeoutMs } : {}),
  });
}

/**
 * Starts argv inside a node's namespace and returns the ChildProcess. `ip netns exec` execs the
 * command in place, so the child's pid is the command's own and signals reach it directly.
 * Processes left running are stopped by labDown.
 */
export function spawnInHost(
  opts: LabOptions,
  host: string,
  argv: readonly string[],
  spawnOptions: SpawnOptions & { hostMounts?: boolean; cgroup?: boolean } = {},
): ChildProcess {
  const node = labNode(opts, host);
  const { hostMounts, cgroup, ...options } = spawnOptions;
  // `ip netns exec` also gives the process a private mount namespace in which /sys/fs/bpf is
  // not mounted; an agent must pin its BPF maps where the next agent finds them, so it enters
  // only the network namespace (nsenter also execs in place: the pid is the command's own).
  const argvIn = hostMounts ? ["nsenter", `--net=/run/netns/${node.netns}`, "--", ...argv] : ["ip", "netns", "exec", node.netns, ...argv];
  const [file, ...args] = placed(opts, node, argvIn, cgroup) as [string, ...string[]];
  return spawn(file, args, options);
}
