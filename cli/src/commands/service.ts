/**
 * `weft service start|stop|restart|status`: the agent service whichever way it runs — systemd's
 * weft-agent.service, or without systemd the process weft started itself (agent-service.ts). The
 * package's postinst uses `restart --if-running` to restart an upgraded agent.
 */
import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { HOST_PATHS, detectAgentService } from "./agent-service.js";
import { requireRoot } from "./up.js";

const ACTIONS = ["start", "stop", "restart", "status"] as const;

export function registerService(program: Command): void {
  program
    .command("service <action>")
    .description("the agent service: start | stop | restart | status (systemd's weft-agent.service, or without systemd the agent weft runs itself)")
    .option("--if-running", "restart: only when it is running")
    .action(async (action: string, f: { ifRunning?: boolean }) => {
      if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`weft service ${action}: want one of ${ACTIONS.join(", ")}`);
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
    });
}
