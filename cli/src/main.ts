#!/usr/bin/env node
/**
 * `weft` — the single entry point: controller, agent, admin commands, and the lab.
 * Every read command takes --json. The commands are declared in program.ts; each one's module is
 * loaded only when it runs. A plain `weft status` skips even that (fast-status.ts).
 */
import { reportAndExit } from "./errors.js";
import { plainStatusArgs } from "./fast-status.js";

const status = plainStatusArgs(process.argv.slice(2));
if (status) {
  import("./commands/status.js").then((m) => m.runStatus(status)).catch(reportAndExit);
} else {
  import("./program.js").then((m) => m.buildProgram().parseAsync(process.argv)).catch(reportAndExit);
}
