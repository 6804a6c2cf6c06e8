/**
 * `labDown`: removes exactly what the state file says the lab created — its namespaces (and with
 * them every veth, bridge, address, route and rule inside) and its host directories — and
 * nothing else. Processes still running in those namespaces are stopped first, because a
 * namespace with live processes outlives `ip netns del`. Safe to run when nothing exists.
 */
import { rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { removeLabCgroups } from "./cgroups.js";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { listNamespaces } from "./observe.js";
import { resolveLabOptions, type LabOptions } from "./options.js";
import { mapLimit, run, runIpBatch } from "./run.js";
import { labPinRoot, readLabState, removeLabState } from "./state.js";
import { requireRoot } from "./root.js";

export interface LabDownOptions extends LabOptions {
  /** Keep `<stateRoot>/<prefix>` (agent keys and state) instead of removing it. */
  keepHostDirs?: boolean;
  /** How long processes get after SIGTERM before SIGKILL (default 2000 ms). */
  killGraceMs?: number;
}

export interface LabDownResult {
  /** Namespaces deleted. */
  removed: string[];
  /** Processes signalled, by namespace. */
  killed: Record<string, number[]>;
  /** Namespaces with the lab's prefix that exist but were not made by it (left alone). */
  foreign: string[];
  durationMs: number;
}

/** Tears the lab down. Needs root. */
export async function labDown(options: LabDownOptions = {}): Promise<LabDownResult> {
  const started = Date.now();
  const opts = resolveLabOptions(options);
  const log = opts.logger;
  requireRoot("lab down");
  const state = await readLabState(opts);
  const recorded = new Set(state?.namespaces ?? []);
  const existing = await listNamespaces();
  const doomed = existing.filter((n) => recorded.has(n));
  const foreign = existing.filter((n) => n.startsWith(`${opts.prefix}-`) && !recorded.has(n));
  if (foreign.length > 0) log.warn({ netns: foreign }, "lab down: leaving namespaces the lab did not create");

  const killed: Record<string, number[]> = {};
  await mapLimit(doomed, 6, async (netns) => {
    const pids = await stopProcesses(netns, options.killGraceMs ?? 2000);
    if (pids.length > 0) {
      killed[netns] = pids;
      log.info({ netns, pids }, "lab down: stopped processes");
    }
  });
  if (doomed.length > 0) await runIpBatch(doomed.map((n) => `netns del ${n}`));
  // What `ip netns exec` bind-mounts for a namespace (agents write workloads' resolv.conf there).
  for (const netns of recorded) await rm(join("/etc/netns", netns), { recursive: true, force: true });
  await removeLabCgroups(opts);

  // Pins of the lab agents' BPF programs and maps (their tc attachments died with the namespaces).
  await rm(labPinRoot(opts), { recursive: true, force: true });
  await rmdir(dirname(labPinRoot(opts))).catch(() => undefined); // the shared parent, once no lab uses it
  if (state && !options.keepHostDirs) {
    for (const dir of state.directories) await rm(dir, { recursive: true, force: true });
  }
  await removeLabState(opts);
  const durationMs = Date.now() - started;
  log.info({ prefix: opts.prefix, removed: doomed.length, durationMs }, "lab down");
  return { removed: doomed, killed, foreign, durationMs };
}

/** PIDs of processes in a namespace (`ip netns pids`). */
export async function namespacePids(netns: string): Promise<number[]> {
  const { stdout } = await run(["ip", "netns", "pids", netns]);
  return stdout
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** SIGTERM everything in the namespace, then SIGKILL what remains after the grace period. */
async function stopProcesses(netns: string, graceMs: number): Promise<number[]> {
  const pids = await namespacePids(netns);
  if (pids.length === 0) return [];
  signalAll(pids, "SIGTERM");
  const deadline = Date.now() + graceMs;
  let left = pids;
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50);
    left = await namespacePids(netns);
  }
  if (left.length > 0) {
    signalAll(left, "SIGKILL");
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await sleep(50);
      left = await namespacePids(netns);
    }
  }
  return pids;
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}
