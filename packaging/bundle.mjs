/**
 * Bundles the `weft` command (cli/dist/main.js and everything it imports) for the package:
 * ESM with code splitting, so each command's code is still loaded only when that command runs,
 * and every chunk beside main.js in one directory, `<root>/lib` (/usr/lib/weft/lib).
 *
 *   node packaging/bundle.mjs <outdir> <licenses file>
 *
 * - Files Weft finds beside its own code keep the repository's layout under `<root>`: in each
 *   workspace module, `import.meta.url` becomes that module's place in the repository mirrored
 *   under `<root>` (`<root>/controller/dist/attest/trust.js`), so bpf's `../dist/<prog>.o`, the
 *   controller's `../../data/trust/` and its console's `../../../console/dist` resolve to
 *   `<root>/bpf/dist`, `<root>/controller/data/trust` and `<root>/console/dist`, where build.sh
 *   installs them.
 * - The lab (`@weft/lab`, an optional dependency of the CLI) is left out: `weft lab` says it is not
 *   installed.
 * - koffi stays external: its native module is found through node_modules beside the bundle
 *   (build.sh copies koffi and @koromix/koffi-linux-<arch> there).
 * - `@google-cloud/compute` is replaced by its three v1 clients the GCP adapter uses; the package
 *   root pulls in every API version and their generated protos (55 of 87 MB). A name the adapter
 *   imports that the replacement lacks fails this build ("No matching export").
 * - CommonJS dependencies get `require`, `__dirname` and `__filename` (module-relative reads in
 *   them resolve against the chunk; none is on a path Weft runs).
 * - `weft agent` gets a bundle of its own, `agent-bundle.cjs` (cli/dist/agent-main.js and all it
 *   imports, one CommonJS file), loaded by `agent.cjs` (packaging/agent.cjs) with the V8 code cache
 *   `agent-bundle.code-cache`, which this script makes by loading the bundle once with the node
 *   running it (the one build.sh ships) and the flags packaging/bin/weft gives `weft agent`.
 * - Writes the licences of every bundled npm package (the console's included) to <licenses file>.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { build } from "esbuild";

const [outdir, licensesFile] = process.argv.slice(2);
if (!outdir || !licensesFile) {
  console.error("usage: node packaging/bundle.mjs <outdir> <licenses file>");
  process.exit(2);
}
const repo = resolve(dirname(new URL(import.meta.url).pathname), "..");

const GCP_CLIENTS = ["instances", "networks", "subnetworks"];
const gcpComputeV1 = {
  name: "gcp-compute-v1",
  setup(b) {
    b.onResolve({ filter: /^@google-cloud\/compute$/ }, () => ({ path: "@google-cloud/compute (v1 clients)", namespace: "weft-shim" }));
    b.onLoad({ filter: /.*/, namespace: "weft-shim" }, () => ({
      resolveDir: repo,
      contents: GCP_CLIENTS.map((n) => `export { ${n[0].toUpperCase()}${n.slice(1)}Client } from "@google-cloud/compute/build/src/v1/${n}_client.js";`).join("\n"),
    }));
  },
};

/** `import.meta.url` of a workspace module → its repository place mirrored under `<outdir>/..`. */
const mirroredUrls = {
  name: "mirrored-import-meta-url",
  setup(b) {
    b.onLoad({ filter: /\/[a-z-]+\/dist\/.*\.js$/ }, (args) => {
      const rel = relative(repo, args.path);
      if (rel.startsWith("..") || rel.split(sep).includes("node_modules")) return undefined;
      const code = readFileSync(args.path, "utf8");
      if (!code.includes("import.meta.url")) return undefined;
      const place = `new URL(${JSON.stringify(`../${rel.split(sep).join("/")}`)}, import.meta.url).href`;
      return { contents: code.replaceAll("import.meta.url", `(${place})`), loader: "js", resolveDir: dirname(args.path) };
    });
  },
};

rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: repo,
  entryPoints: { main: "cli/dist/main.js" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir,
  chunkNames: "[name]-[hash]",
  external: ["koffi", "@weft/lab"],
  plugins: [gcpComputeV1, mirroredUrls],
  // Smaller without renaming anything: stack traces keep their function names.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  define: { __dirname: "import.meta.dirname", __filename: "import.meta.filename" },
  banner: { js: 'import { createRequire as __weftRequire } from "node:module"; const require = __weftRequire(import.meta.url);' },
  metafile: true,
  logLevel: "warning",
});

// `weft agent`: one CommonJS file (vm.Script takes a code cache; Node.js 20 caches no ES module).
const agent = await build({
  absWorkingDir: repo,
  entryPoints: ["cli/dist/agent-main.js"],
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  outfile: join(outdir, "agent-bundle.cjs"),
  external: ["koffi", "@weft/lab"],
  plugins: [gcpComputeV1, mirroredUrls],
  // A dependency's import() of a Node.js module becomes require(): a script run by vm.Script has no
  // loader for import().
  supported: { "dynamic-import": false },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  define: { "import.meta.url": "__weftBundleUrl" },
  banner: { js: 'var __weftBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  metafile: true,
  logLevel: "warning",
});
// V8 holds a script's source for as long as it runs (lazy compilation) and stores it one byte per
// character only when every character is Latin-1: one literal "│" in a regular expression (esbuild
// escapes non-ASCII characters in strings, not in regular expressions) doubled the agent's 3.4 MB
// source in its heap. Write such characters as escapes.
const agentSource = readFileSync(join(outdir, "agent-bundle.cjs"), "utf8");
const wide = /[\u{100}-\u{10ffff}]/u.exec(agentSource);
if (wide) {
  throw new Error(`bundle: agent-bundle.cjs has a character outside Latin-1 (${JSON.stringify(wide[0])}) at ${wide.index}: …${agentSource.slice(Math.max(0, wide.index - 80), wide.index + 20)}…; write it as an escape in the source`);
}
copyFileSync(join(repo, "packaging", "agent.cjs"), join(outdir, "agent.cjs"));
// The same flags as /usr/bin/weft's `agent)` case (test/lab/src/launcher.ts reads them the same way):
// V8 refuses a cache made under other flags.
const launcher = readFileSync(join(repo, "packaging", "bin", "weft"), "utf8");
const agentFlags = /^\s*agent\)\s*set --\s+(.*?)\s*\/usr\/lib\/weft\/lib\/agent\.cjs\s+"\$@"/m.exec(launcher)?.[1]?.split(/\s+/);
if (!agentFlags) throw new Error("bundle: packaging/bin/weft has no `agent)` case running /usr/lib/weft/lib/agent.cjs");
// koffi is found through NODE_PATH here; build.sh and the lab put it beside the bundle.
const cached = spawnSync(process.execPath, [...agentFlags, join(outdir, "agent.cjs"), "--write-code-cache"], {
  env: { ...process.env, NODE_PATH: join(repo, "node_modules") },
  encoding: "utf8",
});
if (cached.status !== 0) throw new Error(`bundle: making the agent's code cache failed: ${cached.stderr.slice(0, 1000)}`);

// Every npm package in the bundle and in the console's assets (plus koffi, shipped beside the
// bundle) and its licence text.
const packages = new Map();
// The console's built assets (console/dist, served by the controller) carry npm packages too: Vite
// bundled them; the same graph, resolved by esbuild without writing anything, names them.
const consoleGraph = await build({
  absWorkingDir: repo,
  entryPoints: ["console/src/main.tsx"],
  bundle: true,
  write: false,
  outdir: join(outdir, "console-graph"),
  platform: "browser",
  format: "esm",
  jsx: "automatic",
  jsxImportSource: "preact",
  metafile: true,
  logLevel: "warning",
});
for (const input of [...Object.keys(result.metafile.inputs), ...Object.keys(agent.metafile.inputs), ...Object.keys(consoleGraph.metafile.inputs), "node_modules/koffi/index.js"]) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!m) continue;
  const dir = join(repo, m[1]);
  if (packages.has(dir)) continue;
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.md|\.txt)?$/i.test(f));
  packages.set(dir, { name: pkg.name, version: pkg.version, license: typeof pkg.license === "string" ? pkg.license : JSON.stringify(pkg.license ?? "see package"), text: file ? readFileSync(join(dir, file), "utf8").trim() : undefined });
}
const sorted = [...packages.values()].sort((a, b) => a.name.localeCompare(b.name));
const missing = sorted.filter((p) => p.text === undefined && !p.license);
if (missing.length) {
  console.error(`bundle: no licence for ${missing.map((p) => p.name).join(", ")}`);
  process.exit(1);
}
writeFileSync(
  licensesFile,
  `Third-party npm packages bundled into /usr/lib/weft (${sorted.length})\n\n` +
    sorted.map((p) => `${"=".repeat(78)}\n${p.name} ${p.version} — ${p.license}\n${"=".repeat(78)}\n${p.text ?? `(no licence file in the package; its package.json says ${p.license})`}\n`).join("\n"),
);

// The entry's `#!/usr/bin/env node` would name a system Node.js; /usr/bin/weft runs the bundled one.
const main = join(outdir, "main.js");
writeFileSync(main, readFileSync(main, "utf8").replace(/^#!.*\n/, ""));
chmodSync(main, 0o644);

let bytes = 0;
for (const o of [...Object.values(result.metafile.outputs), ...Object.values(agent.metafile.outputs)]) bytes += o.bytes;
const files = readdirSync(outdir).length;
if (!existsSync(join(outdir, "main.js"))) throw new Error("bundle: main.js was not written");
console.error(`bundle: ${files} files, ${(bytes / 1e6).toFixed(1)} MB, ${sorted.length} npm packages`);
