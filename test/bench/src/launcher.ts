/**
 * How the package runs the agent, for the benchmarks: the runtime settings (node flags and
 * glibc's allocator knobs) its systemd unit sets with `Environment=`, so a benchmark starts a
 * build's agent the way that build's package would, and the package's layout of a checkout.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, realpathSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";

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


/**
 * The checkout's `weft` as its package installs it: packaging/bundle.mjs writes the bundle to
 * `<dir>/lib`, and what the bundle finds beside itself (the eBPF objects, koffi, the controller's
 * trust data and nats-server) is linked from the checkout into the package's layout under `<dir>`
 * (packaging/build.sh copies the same files to /usr/lib/weft). Returns `<dir>/lib/main.js`.
 */
export function bundleCheckout(checkout: string, dir: string): string {
  const built = spawnSync(process.execPath, [join(checkout, "packaging", "bundle.mjs"), join(dir, "lib"), join(dir, "third-party-licenses.txt")], { cwd: checkout, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`bundling ${checkout}: ${built.stderr.slice(0, 500)}`);
  const links: [string, string][] = [
    ["bpf/dist", "bpf/dist"],
    ["controller/data/trust", "controller/data/trust"],
    ["console/dist", "console/dist"],
    ["node_modules/koffi", "node_modules/koffi"],
    ["node_modules/@koromix/koffi-linux-x64", "node_modules/@koromix/koffi-linux-x64"],
    [".tools/bin/nats-server", "bin/nats-server"],
  ];
  for (const [from, to] of links) {
    if (!existsSync(join(checkout, from))) continue;
    mkdirSync(dirname(join(dir, to)), { recursive: true });
    symlinkSync(realpathSync(join(checkout, from)), join(dir, to));
  }
  return join(dir, "lib", "main.js");
}
