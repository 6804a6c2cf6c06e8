/**
 * How the package's launcher (`packaging/bin/weft`, installed as /usr/bin/weft) runs `weft agent`,
 * read from that script, so that the lab's agents and the benchmarks' run the way an installed
 * agent does: its node flags, and the bundle's own entry for the agent.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** The flags in the launcher's `agent)` case, before the script it runs; [] when it has none. */
export function agentNodeFlags(launcher: string): string[] {
  const line = /^\s*agent\)\s*set --\s+(.*?)\s*\/usr\/lib\/weft\/lib\/[\w.-]+\s+"\$@"/m.exec(launcher);
  return (line?.[1] ?? "").split(/\s+/).filter((f) => f !== "");
}

/** agentNodeFlags of the launcher in a checkout (its packaging/bin/weft); [] when there is none. */
export function checkoutAgentNodeFlags(checkout: string): string[] {
  const launcher = join(checkout, "packaging", "bin", "weft");
  return existsSync(launcher) ? agentNodeFlags(readFileSync(launcher, "utf8")) : [];
}

/**
 * What runs `weft agent` for the `weft` at `cli`: in a package's bundle (`<dir>/lib/main.js`), the
 * agent's own entry beside it, `agent.cjs` (packaging/agent.cjs: the agent's bundle with its code
 * cache), as the launcher runs it; otherwise (cli/dist, a bundle from before it) `cli` itself.
 */
export function agentEntry(cli: string): string {
  const entry = join(dirname(cli), "agent.cjs");
  return existsSync(entry) ? entry : cli;
}
