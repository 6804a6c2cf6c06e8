/**
 * `weft status` is what people (and scripts) run most, and a running agent answers it from memory:
 * its plain forms — `weft status [--json] [--state-dir <dir>]` — are recognised here without
 * loading commander or declaring the other commands. Anything else (help, a typo, another option)
 * is left to the full program (program.ts), which declares the same options.
 */
import { DEFAULT_AGENT_STATE_DIR } from "./defaults.js";

export interface StatusArgs {
  stateDir: string;
  json?: boolean;
}

/** The options of a plain `weft status` command line (argv without node and the script), or undefined. */
export function plainStatusArgs(argv: readonly string[]): StatusArgs | undefined {
  if (argv[0] !== "status") return undefined;
  const out: StatusArgs = { stateDir: DEFAULT_AGENT_STATE_DIR };
  let stateDir = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--json" && !out.json) out.json = true;
    else if (a === "--state-dir" && !stateDir && i + 1 < argv.length && !(argv[i + 1] as string).startsWith("-")) {
      out.stateDir = argv[++i] as string;
      stateDir = true;
    } else if (a.startsWith("--state-dir=") && !stateDir && a.length > "--state-dir=".length) {
      out.stateDir = a.slice("--state-dir=".length);
      stateDir = true;
    } else return undefined;
  }
  return out;
}
