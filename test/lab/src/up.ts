/**
 * `labUp`: builds the lab, idempotently. It observes what exists, plans only what is missing and
 * applies it in phases, so a second run changes nothing and a half-built lab (a crash midway,
 * a namespace deleted by hand) is completed. It refuses to touch a namespace it did not create.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { ensureHostCgroups } from "./cgroups.js";
import { LabConflictError } from "./errors.js";
import { requireRoot } from "./root.js";
import { labNetwork } from "./network.js";
import { listNamespaces, observeNamespaces } from "./observe.js";
import { resolveLabOptions, type LabOptions } from "./options.js";
import { classifyNamespaces, describePlan, planLab, restoreScript, type NamespacePlan } from "./plan.js";
import { mapLimit, run, runIpBatch } from "./run.js";
import { hostDir, labDir, readLabState, statePath, writeLabState, type LabState } from "./state.js";
import { labTopology, topologyNamespaces, type Topology } from "./topology.js";

export interface LabUpResult {
  topology: Topology;
  /** Namespaces created by this call. */
  created: string[];
  /** Every change applied, one line each; empty when the lab was already complete. */
  changes: string[];
  durationMs: number;
}

const CONCURRENCY = 6;

/** Builds (or completes) the lab. Needs root. */
export async function labUp(options: LabOptions = {}): Promise<LabUpResult> {
  const started = Date.now();
  const opts = resolveLabOptions(options);
  const log = opts.logger;
  requireRoot("lab up");
  const topology = labTopology(opts);
  const specs = labNetwork(topology);
  const desired = topologyNamespaces(topology);

  const prior = await readLabState(opts);
  const state: LabState = prior ?? { version: 1, prefix: opts.prefix, namespaces: [], directories: [] };
  const existing = new Set(await listNamespaces());
  const { toCreate, conflicts } = classifyNamespaces({ desired, existing, recorded: new Set(state.namespaces) });
  if (conflicts.length > 0) throw new LabConflictError(conflicts, statePath(opts));

  // Record before creating (write-ahead): down must know about anything up may have made. Only
  // `<stateRoot>/<prefix>` is recorded, never the shared stateRoot another lab may also use.
  const root = labDir(opts);
  const rootIsNew = !existsSync(root);
  const next: LabState = {
    ...state,
    namespaces: union(state.namespaces, toCreate),
    directories: rootIsNew ? union(state.directories, [root]) : state.directories,
  };
  if (JSON.stringify(next) !== JSON.stringify(prior)) await writeLabState(opts, next);

  const changes: string[] = [];
  const nodeDirs = [...topology.hosts.map((h) => h.name), ...topology.controllers.map((c) => c.name)].map((n) => hostDir(opts, n));
  for (const dir of nodeDirs) {
    if (existsSync(dir)) continue;
    await mkdir(dir, { recursive: true });
    changes.push(`mkdir ${dir}`);
  }

  // Each host's processes in its own cgroup (cgroups.ts): its agent's socket programs attach there.
  changes.push(...(await ensureHostCgroups(opts, topology.hosts.map((h) => h.name))).map((d) => `mkdir ${d}`));

  if (toCreate.length > 0) {
    log.info({ netns: toCreate }, "creating namespaces");
    await runIpBatch(toCreate.map((n) => `netns add ${n}`));
    changes.push(...toCreate.map((n) => `ip netns add ${n}`));
  }

  const observed = await observeNamespaces(specs, new Set([...existing, ...toCreate]), CONCURRENCY);
  const plans = planLab(specs, new Map(observed.map((o) => [o.netns, o])));
  const steps = describePlan(plans);
  for (const s of steps) log.debug({ step: s }, "lab up step");

  await mapLimit(plans, CONCURRENCY, (p) => runIpBatch(p.create, p.netns));
  await mapLimit(plans, CONCURRENCY, (p) => runIpBatch(p.configure, p.netns));
  await mapLimit(plans, CONCURRENCY, applySysctls);
  await mapLimit(plans, CONCURRENCY, applyRules);
  changes.push(...steps);

  const durationMs = Date.now() - started;
  log.info({ prefix: opts.prefix, created: toCreate.length, changes: changes.length, durationMs }, "lab up");
  return { topology, created: toCreate, changes, durationMs };
}

async function applySysctls(p: NamespacePlan): Promise<void> {
  if (p.sysctls.length === 0) return;
  await run(["ip", "netns", "exec", p.netns, "sysctl", "-q", "-w", ...p.sysctls.map((s) => `${s.key}=${s.value}`)]);
}

/** Appends the missing rules in one atomic `iptables-restore --noflush`, in spec order. */
async function applyRules(p: NamespacePlan): Promise<void> {
  if (p.rules.length === 0) return;
  await run(["ip", "netns", "exec", p.netns, "iptables-restore", "-w", "--noflush"], { input: restoreScript(p.rules) });
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}
