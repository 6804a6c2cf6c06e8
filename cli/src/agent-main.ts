/**
 * `weft agent …` as the package runs it: packaging/bundle.mjs bundles this module alone as
 * lib/agent-bundle.cjs, which packaging/agent.cjs loads with V8's code cache. The agent's commands
 * are imported here up front (not when their action runs, as program.ts does), so that the cache
 * made when the package is built holds the agent's modules compiled.
 */
import { importDeferredModules } from "@weft/agent";
import * as agentCommands from "./commands/agent.js";
import { reportAndExit } from "./errors.js";
import { buildAgentProgram } from "./program.js";
import type { CodeLoad } from "./commands/agent.js";

/** Runs `weft agent …` from `argv` (node's: the runtime, the script, then `agent`, …). */
export function main(argv: string[], load: CodeLoad): void {
  buildAgentProgram(() => Promise.resolve(agentCommands), load).parseAsync(argv).catch(reportAndExit);
}

/** For the code cache (packaging/agent.cjs --write-code-cache): also the modules the agent imports later. */
export const importDeferred = importDeferredModules;
