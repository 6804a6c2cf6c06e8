/**
 * `weft service start|stop|restart|status`: the agent service whichever way it runs — systemd's
 * weft-agent.service, or without systemd the process weft started itself (agent-service.ts). The
 * package's postinst uses `restart --if-running` to restart an upgraded agent.
 */
import { UsageError } from "../errors.js";
import { HOST_PATHS, detectAgentService, requireRoot } from "./agent-service.js";

/** What `weft service` does. */
export const SERVICE_ACTIONS = ["start", "stop", "restart", "status"] as const;

export interface ServiceFlags {
  ifRunning?: boolean;
}

export async function runService(action: string, f: ServiceFlags): Promise<void> {
  if (!(SERVICE_ACTIONS as readonly string[]).includes(action)) throw new UsageError(`weft service ${action}: want one of ${SERVICE_ACTIONS.join(", ")}`);
  const service = detectAgentService(HOST_PATHS);
  const running = await service.isRunning();
  if (action === "status") {
    process.stdout.write(`${running ? "running" : "stopped"} (${service.kind === "systemd" ? HOST_PATHS.unitName : `no systemd: ${HOST_PATHS.pidFile}`})\n`);
    process.exitCode = running ? 0 : 3;
    return;
  }
  requireRoot(`weft service ${action}`);
  if (action === "stop") return service.stop();
  if (action === "start" && running) return;
  if (action === "restart" && f.ifRunning && !running) return;
  await service.restart();
}
