// One lint config for every workspace: typescript-eslint's recommended rules, plus the boundaries
// between workspaces (tests included) and the CLI's cheap entry. protocol/src/dependencies.test.ts
// runs this config on snippets to show that each boundary fires.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Folder → package name of every workspace. */
const WORKSPACES = {
  protocol: "@weft/protocol",
  util: "@weft/util",
  bpf: "@weft/bpf",
  "cloud-sim": "@weft/cloud-sim",
  "cloud-adapters": "@weft/cloud",
  controller: "@weft/controller",
  agent: "@weft/agent",
  cli: "@weft/cli",
  test: "@weft/lab",
};

/**
 * The workspaces each product workspace may import (its tests too). Everything else is refused:
 * agent and controller never import each other and talk through protocol; the agent never imports
 * the cloud adapters; protocol, util, bpf and cloud-sim are leaves. cli and test (the lab, the
 * end-to-end and integration tests, the benchmarks) sit above all of them and are not listed.
 */
export const ALLOWED_DEPENDENCIES = {
  protocol: [],
  util: [],
  bpf: [],
  "cloud-sim": [],
  "cloud-adapters": ["protocol", "cloud-sim"],
  controller: ["protocol", "util", "cloud-adapters", "cloud-sim"],
  agent: ["protocol", "util", "bpf", "cloud-sim"],
};

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** A dependency's `internal` entry point (`@nats-io/kv/internal`) is not its public API. */
const NO_INTERNAL = {
  regex: "^(@[^/]+/)?[^./][^/]*/internal(/|$)",
  message:
    "a dependency's internal entry point is not its API: it may change in any release. If there is no other way, disable this line with a comment saying why, and add a test that fails when the library changes (see controller/src/store/keys.ts).",
};

function restrictImports(patterns) {
  return { "@typescript-eslint/no-restricted-imports": ["error", { patterns: [...patterns, NO_INTERNAL] }] };
}

/** Patterns refusing the workspaces `folder` may not import: by package name, and relative imports that leave it. */
function boundaryPatterns(folder, depth) {
  const allowed = new Set(ALLOWED_DEPENDENCIES[folder]);
  const refused = Object.keys(WORKSPACES).filter((w) => w !== folder && !allowed.has(w));
  const names = refused.map((w) => escape(WORKSPACES[w]));
  return [
    {
      regex: `^(${names.join("|")})(/|$)`,
      message: `${folder} may import ${allowed.size ? `only ${[...allowed].map((w) => WORKSPACES[w]).join(", ")}` : "no other workspace"} (tests included); see ALLOWED_DEPENDENCIES in eslint.config.js. Code both sides need goes to @weft/protocol; tests that need both sides go to test/integration/.`,
    },
    {
      // A file `depth` folders below its workspace leaves it with depth + 1 `../`.
      regex: `^(\\.\\./){${depth + 1},}`,
      message: `a relative import may not leave ${folder}/: import another workspace by its package name, if ${folder} may depend on it.`,
    },
  ];
}

/** One config block per workspace and folder depth: every file gets exactly one set of patterns (the rule's options do not merge). */
const boundaries = Object.keys(ALLOWED_DEPENDENCIES).flatMap((folder) =>
  Array.from({ length: 10 }, (_, depth) => ({
    files: [`${folder}/${"*/".repeat(depth)}*.{ts,js,mjs}`],
    rules: restrictImports(boundaryPatterns(folder, depth)),
  })),
);

/** main.ts, fast-status.ts and program.ts run for every `weft` command, `--help` included: they load commander and nothing heavy. */
const cliEntry = {
  files: ["cli/src/main.ts", "cli/src/fast-status.ts", "cli/src/program.ts"],
  rules: {
    "@typescript-eslint/no-restricted-imports": [
      "error",
      {
        patterns: [
          {
            regex: "^(?!commander$|node:|\\./(errors|defaults|fast-status|program)\\.js$)",
            allowTypeImports: true,
            message:
              "the CLI's entry loads only commander: a command's module (and the packages it needs) is imported by its action, `await import(\"./commands/<name>.js\")`, so `weft status` never loads the controller. Type-only imports are fine.",
          },
          NO_INTERNAL,
        ],
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "terraform/**", "bpf/dist/**", "bpf/progs/**", ".tools/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly", Buffer: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": ["error", { selector: "ExportDefaultDeclaration", message: "Named exports only." }],
      ...restrictImports([]),
    },
  },
  ...boundaries,
  cliEntry,
  { files: ["**/*.config.ts", "eslint.config.js"], rules: { "no-restricted-syntax": "off" } },
  // The installed agent's loader is CommonJS on purpose (packaging/agent.cjs: vm.Script and a code cache).
  { files: ["**/*.cjs"], languageOptions: { sourceType: "commonjs", globals: { require: "readonly", __dirname: "readonly", module: "writable" } }, rules: { "@typescript-eslint/no-require-imports": "off" } },
);
