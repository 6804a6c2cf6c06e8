/**
 * How the package runs the agent, for the benchmarks: the runtime settings (node flags and
 * glibc's allocator knobs) its systemd unit sets with `Environment=`, so a benchmark starts a
 * build's agent the way that build's package would.
 */

/** The runtime settings a unit gives its process: NODE_OPTIONS, MALLOC_*, GLIBC_TUNABLES. */
export function unitRuntimeEnv(unitText: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of unitText.split("\n")) {
    const m = /^Environment=(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const assignment of (m[1] as string).match(/"[^"]*"|\S+/g) ?? []) {
      const [name, ...value] = assignment.replace(/^"|"$/g, "").split("=");
      if (name !== undefined && /^(NODE_OPTIONS|MALLOC_\w+|GLIBC_TUNABLES)$/.test(name)) env[name] = value.join("=");
    }
  }
  return env;
}

