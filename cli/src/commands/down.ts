/**
 * `weft down`: leave the overlay and leave nothing behind. Stops and disables the agent service,
 * removes what the agent keeps in the kernel when it merely stops (its WireGuard interface and
 * with it the routes and wireguard-go, the VXLAN device, workload veths, the gateway's nat chain,
 * the pinned eBPF programs and maps), then its state, config, join key and log — unless
 * --keep-state (what package removal uses, so a reinstall rejoins as the same node). The node
 * stays listed, offline, at the controller until an admin deletes it (`weft nodes delete`).
 */
import { readdir, rm, rmdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { AgentConfig, teardown, type TeardownInput } from "@weft/agent/host";
import { loadState } from "@weft/agent/local";
import { readConfigFile } from "../config-file.js";
import { HOST_PATHS, detectAgentService, requireRoot } from "./agent-service.js";

/** What to tear down and delete, from the config file (falling back to defaults when it is missing or broken). */
export function downPlan(file: Record<string, unknown>): { teardown: Omit<TeardownInput, "workloads">; stateDir: string; workloads: string[]; configProblem: string | undefined } {
  const parsed = AgentConfig.safeParse(file);
  const config = parsed.success ? parsed.data : AgentConfig.parse({});
  return {
    teardown: { interfaceName: config.interface.name, vxlanInterface: config.datapath.vxlanInterface, pinDir: config.datapath.pinDir },
    stateDir: config.stateDir,
    workloads: config.workloads.map((w) => w.name),
    configProblem: parsed.success ? undefined : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
  };
}

export interface DownFlags {
  keepState?: boolean;
}

/** Leaves the overlay: stops the service, tears down what the agent left in the kernel, then (unless --keep-state) its files. */
export async function runDown(f: DownFlags): Promise<void> {
  requireRoot("weft down");
  const paths = HOST_PATHS;
  const file = existsSync(paths.configFile) ? await readConfigFile(paths.configFile).catch(() => ({})) : {};
  const plan = downPlan(file);
  if (plan.configProblem) process.stderr.write(`weft: ${paths.configFile} is not valid (${plan.configProblem}); tearing down the default names\n`);

  const service = detectAgentService(paths);
  await service.stop({ disable: true });
  const state = await loadState(plan.stateDir).catch(() => undefined);
  const workloads = [...plan.workloads, ...(state?.workloads ?? []).map((w) => w.name)];
  const report = await teardown({ ...plan.teardown, workloads });
  for (const line of report.removed) process.stderr.write(`weft: removed ${line}\n`);

  if (!f.keepState) {
    for (const path of [plan.stateDir, paths.configFile, paths.joinKeyFile, paths.logFile, paths.pidFile]) {
      if (!existsSync(path)) continue;
      await rm(path, { recursive: true, force: true });
      process.stderr.write(`weft: removed ${path}\n`);
    }
    // Parents weft made, when nothing else (a controller's config or state) lives there.
    for (const dir of [dirname(plan.stateDir), dirname(paths.configFile), dirname(paths.logFile), dirname(paths.pidFile)]) await removeIfEmpty(dir);
  }
  if (report.remaining.length > 0) {
    throw new Error(`left behind, remove by hand:\n  ${report.remaining.join("\n  ")}`);
  }
  process.stderr.write(`weft: this host has left the overlay${f.keepState ? " (state kept)" : ""}; the controller lists it offline until \`weft nodes delete ${state?.name ?? "<name>"}\`\n`);
}

async function removeIfEmpty(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => undefined);
  if (entries?.length === 0) await rmdir(dir).catch(() => undefined);
}
