#!/usr/bin/env node
/**
 * `weft` — the single entry point: controller, agent, admin commands, and the lab.
 * Every read command takes --json.
 */
import { Command } from "commander";
import { registerAgent } from "./commands/agent.js";
import { registerController } from "./commands/controller.js";
import { registerEnrollmentPolicy } from "./commands/enrollment.js";
import { registerIdentities } from "./commands/identities.js";
import { registerInventory } from "./commands/inventory.js";
import { registerKeys } from "./commands/keys.js";
import { registerLab } from "./commands/lab.js";
import { registerNodes } from "./commands/nodes.js";
import { registerPolicy } from "./commands/policy.js";
import { registerService } from "./commands/service.js";
import { registerStatus } from "./commands/status.js";
import { registerFlows } from "./commands/flows.js";
import { reportAndExit } from "./errors.js";

const program = new Command("weft")
  .description("Weft: one encrypted L3 overlay across clouds and on-prem")
  .version("0.1.0")
  .showHelpAfterError();

registerController(program);
registerAgent(program);
registerStatus(program);
registerFlows(program);
registerKeys(program);
registerEnrollmentPolicy(program);
registerNodes(program);
registerIdentities(program);
registerInventory(program);
registerPolicy(program);
registerService(program);
registerLab(program);

program.parseAsync(process.argv).catch(reportAndExit);
