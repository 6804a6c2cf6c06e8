#!/usr/bin/env node
/**
 * `weft` — the single entry point: controller, agent, admin commands, and the lab.
 * Every read command takes --json. The commands are declared in program.ts; each one's module is
 * loaded only when it runs.
 */
import { buildProgram } from "./program.js";
import { reportAndExit } from "./errors.js";

buildProgram().parseAsync(process.argv).catch(reportAndExit);
