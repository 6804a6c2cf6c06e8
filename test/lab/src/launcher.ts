/**
 * The node flags the package's launcher (`packaging/bin/weft`, installed as /usr/bin/weft) gives
 * `weft agent`, read from that script, so that the lab's agents and the benchmarks' run the way an
 * installed agent does.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The flags in the launcher's `agent)` case, before the bundle's path; [] when it has none. */
export function agentNodeFlags(launcher: string): string[] {
  const line = /^\s*agent\)\s*set --\s+(.*?)\s*\/usr\/lib\/weft\/lib\/main\.js\s+"\$@"/m.exec(launcher);
  return (line?.[1] ?? "").split(/\s+/).filter((f) => f !== "");
}

/** agentNodeFlags of the launcher in a checkout (its packaging/bin/weft); [] when there is none. */
export function checkoutAgentNodeFlags(checkout: string): string[] {
  const launcher = join(checkout, "packaging", "bin", "weft");
  return existsSync(launcher) ? agentNodeFlags(readFileSync(launcher, "utf8")) : [];
}
