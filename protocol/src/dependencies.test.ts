/**
 * The direction of dependencies between workspaces is enforced by eslint.config.js (tests
 * included): agent and controller never import each other and talk through protocol, the agent
 * never imports the cloud adapters, protocol, util, bpf and cloud-sim import no workspace, a
 * relative import never leaves its workspace, nobody imports a dependency's `internal` entry point,
 * and the CLI's entry loads commander only. Here the real config runs (ESLint's Node API) on
 * snippets placed where they would break a rule, and on the allowed ones.
 */
import { ESLint } from "eslint";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const RULE = "@typescript-eslint/no-restricted-imports";

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: root });
});

/** The messages of the boundary rule for `code` linted as if it were the file at `path`. */
async function violations(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${path}` });
  if (!result) throw new Error(`eslint returned no result for ${path}`);
  const fatal = result.messages.filter((m) => m.fatal);
  if (fatal.length > 0) throw new Error(`${path}: ${fatal.map((m) => m.message).join("; ")}`);
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

const refused: [string, string, RegExp][] = [
  ["agent/src/probe.ts", `import { startController } from "@weft/controller";`, /agent may import only/],
  ["agent/src/enroll/probe.test.ts", `import { startTestController } from "../../../controller/src/testing.js";`, /may not leave agent/],
  ["agent/src/probe.test.ts", `import { AwsInventory } from "@weft/cloud";`, /agent may import only/],
  ["agent/src/probe.ts", `export { startController } from "@weft/controller";`, /agent may import only/],
  ["agent/src/probe.ts", `import type { RunningController } from "@weft/controller";`, /agent may import only/],
  ["controller/src/probe.ts", `import { startAgent } from "@weft/agent";`, /controller may import only/],
  ["controller/src/nodes/probe.test.ts", `import { generateKeyPair } from "../../../agent/src/wireguard/keys.js";`, /may not leave controller/],
  ["controller/src/probe.ts", `import { loadState } from "@weft/agent/local";`, /controller may import only/],
  ["protocol/src/probe.ts", `import { Backoff } from "@weft/util";`, /protocol may import no other workspace/],
  ["bpf/src/probe.test.ts", `import { Buckets } from "@weft/protocol";`, /bpf may import no other workspace/],
  ["cloud-adapters/src/aws/probe.ts", `import { startController } from "@weft/controller";`, /cloud-adapters may import only/],
  ["controller/src/store/probe.ts", `import { Bucket } from "@nats-io/kv/internal";`, /internal entry point/],
  ["cli/src/commands/probe.ts", `import { Bucket } from "@nats-io/kv/internal";`, /internal entry point/],
  ["cli/src/program.ts", `import { startAgent } from "@weft/agent";`, /the CLI's entry loads only commander/],
  ["cli/src/main.ts", `import { runStatus } from "./commands/status.js";`, /the CLI's entry loads only commander/],
];

const allowed: [string, string][] = [
  ["agent/src/probe.ts", `import { Buckets } from "@weft/protocol";\nimport { Backoff } from "@weft/util";\nimport { BpfMap } from "@weft/bpf";`],
  ["agent/src/enroll/probe.test.ts", `import { startAwsSim } from "@weft/cloud-sim";\nimport { enroll } from "../enroll/client.js";\nimport { AgentConfig } from "../../src/config.js";`],
  ["controller/src/probe.ts", `import { AwsInventory } from "@weft/cloud";\nimport { Buckets, generateKeyPair } from "@weft/protocol";`],
  ["cli/src/commands/probe.ts", `import { startController } from "@weft/controller";\nimport { startAgent } from "@weft/agent";`],
  ["cli/src/program.ts", `import { Command } from "commander";\nimport type { AgentFlags } from "./commands/agent.js";\nimport { UsageError } from "./errors.js";`],
  ["test/integration/probe.test.ts", `import { startAgent } from "../../agent/src/agent.js";\nimport { startTestController } from "../../controller/src/testing.js";`],
];

describe("dependencies", () => {
  for (const [path, code, want] of refused) {
    it(`dependencies - refused in ${path}: ${code}`, async () => {
      const got = await violations(path, code);
      expect(got.length, `${path}: want one ${RULE} error for ${code}, got ${JSON.stringify(got)}`).toBe(1);
      expect(got[0]).toMatch(want);
    });
  }
  for (const [path, code] of allowed) {
    it(`dependencies - allowed in ${path}: ${code.split("\n").join("; ")}`, async () => {
      expect(await violations(path, code), `${path}: want no ${RULE} error`).toEqual([]);
    });
  }
});
