/**
 * `weft enrollment-policy` and `weft keys create --instance-*`: files and flags parsed and checked
 * before anything is sent, then run as the built CLI (cli/dist/main.js, made by `npx tsc -b`)
 * against a real controller over its unix socket.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { EnrollmentPolicy, JoinKeyCreated } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestController, type TestController } from "../../../controller/src/testing.js";
import { UsageError } from "../errors.js";
import { cloudFlags } from "./cloud-flags.js";
import { enrollmentPolicyFromFlags, parseEnrollmentPolicyFile } from "./enrollment.js";
import { agentCommandHint, formatSelector, instanceSelectorFlags } from "./keys.js";

const exec = promisify(execFile);
const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "main.js");
const built = existsSync(CLI);
if (!built) console.warn(`enrollment.test: the built-CLI tests are skipped: ${CLI} is missing; run \`npx tsc -b\``);

describe("enrollment policy files and flags", () => {
  it("cli enrollment-policy - a file with several documents parses; a bad one names the policy and field", () => {
    const text = "name: aws-prod\nselector: {provider: aws, account: '1111', tags: {env: prod}}\nlabels: {tier: web}\n---\n- name: gcp-any\n  selector: {provider: gcp}\n";
    expect(parseEnrollmentPolicyFile(text, "p.yaml").map((p) => p.name), "names").toEqual(["aws-prod", "gcp-any"]);
    expect(() => parseEnrollmentPolicyFile("name: x\nselector: {account: '1'}\n", "p.yaml"), "no provider").toThrow(/p\.yaml is invalid: selector\.provider/);
    expect(() => parseEnrollmentPolicyFile("name: x\nselector: {provider: aws, vpc: v}\n", "p.yaml"), "unknown field").toThrow(/vpc/);
    expect(() => parseEnrollmentPolicyFile("- {name: a, selector: {provider: aws}}\n- {name: a, selector: {provider: gcp}}\n", "p.yaml"), "duplicate").toThrow(/the name a appears twice/);
    expect(() => parseEnrollmentPolicyFile("", "p.yaml"), "empty").toThrow(/holds no enrollment policy/);
  });

  it("cli enrollment-policy - flags make one policy; --name and --provider are required", () => {
    expect(enrollmentPolicyFromFlags({ name: "azure-web", provider: "azure", region: "westeurope", tag: ["env=prod"], label: ["tier=web"] })).toEqual({
      name: "azure-web",
      selector: { provider: "azure", region: "westeurope", tags: { env: "prod" } },
      labels: { tier: "web" },
    });
    expect(() => enrollmentPolicyFromFlags({ provider: "aws" }), "no name").toThrow(UsageError);
    expect(() => enrollmentPolicyFromFlags({ name: "x", provider: "ibm" }), "unknown provider").toThrow(/selector\.provider/);
    expect(() => enrollmentPolicyFromFlags({ name: "x", provider: "aws", tag: ["env"] }), "tag without =").toThrow(/--tag env: use key=value/);
  });

  it("cli keys - --instance-* flags make a selector; --require-instance alone an empty one; none, no selector", () => {
    expect(instanceSelectorFlags({ instanceProvider: "aws", instanceAccount: "1111", instanceTag: ["env=prod", "team=web"] })).toEqual({ provider: "aws", account: "1111", tags: { env: "prod", team: "web" } });
    expect(instanceSelectorFlags({ requireInstance: true }), "--require-instance").toEqual({});
    expect(instanceSelectorFlags({}), "no flags").toBeUndefined();
    expect(() => instanceSelectorFlags({ instanceProvider: "ibm" }), "bad provider").toThrow(/--instance-provider/);
    expect(formatSelector({ provider: "aws", tags: { env: "prod" } })).toBe("provider=aws tags.env=prod");
    expect(formatSelector({})).toBe("any instance in the inventory");
  });

  it("cli keys - the agent command for a key with an instance selector carries --cloud", () => {
    const created = JoinKeyCreated.parse({ id: "0123456789ab", reusable: false, labels: {}, createdAt: "x", expiresAt: "y", uses: 0, state: "active", key: "weft_k", instanceSelector: { provider: "gcp" } });
    expect(agentCommandHint(created, undefined)).toContain("--join-key-file /etc/weft/join-key --cloud gcp");
    expect(agentCommandHint(created, undefined), "the key itself is not in the command").not.toContain("weft_k");
  });

  it("cli agent - --cloud and --metadata-endpoint become the config's cloud; an unknown cloud is a usage error", () => {
    expect(cloudFlags("aws", "http://198.18.0.1:8080")).toEqual({ provider: "aws", metadataEndpoint: "http://198.18.0.1:8080" });
    expect(cloudFlags(undefined, undefined)).toBeUndefined();
    expect(cloudFlags(undefined, "http://x")).toEqual({ metadataEndpoint: "http://x" });
    expect(() => cloudFlags("onprem", undefined)).toThrow(/--cloud onprem: want one of aws, azure, gcp/);
  });
});

describe.skipIf(!built)("cli enrollment-policy against a controller", () => {
  let t: TestController;
  let scratch: string;
  beforeAll(async () => {
    t = await startTestController();
    scratch = await mkdtemp(join(tmpdir(), "weft-cli-enroll-"));
  });
  afterAll(async () => {
    await t?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  async function weft(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = { ...process.env };
    delete env.WEFT_ADMIN_TOKEN;
    delete env.WEFT_CA_HASH;
    try {
      const { stdout, stderr } = await exec(process.execPath, [CLI, ...args, "--controller-state-dir", t.stateDir], { env, timeout: 30_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
  }

  it("cli enrollment-policy - apply -f, apply with flags, get, delete", async () => {
    const file = join(scratch, "policies.yaml");
    await writeFile(file, "name: aws-prod\nselector: {provider: aws, tags: {env: prod}}\nlabels: {tier: web}\n");
    const applied = await weft(["enrollment-policy", "apply", "-f", file]);
    expect(applied.code, `apply -f (stderr: ${applied.stderr})`).toBe(0);
    expect(applied.stdout, "apply -f output").toBe("enrollment policy aws-prod applied: provider=aws tags.env=prod\n");
    const flags = await weft(["enrollment-policy", "apply", "--name", "gcp-any", "--provider", "gcp", "--label", "cloud=gcp"]);
    expect(flags.code, `apply with flags (stderr: ${flags.stderr})`).toBe(0);
    const list = await weft(["enrollment-policy", "get", "--json"]);
    expect(EnrollmentPolicy.array().parse(JSON.parse(list.stdout)).map((p) => p.name), "get --json").toEqual(["aws-prod", "gcp-any"]);
    const del = await weft(["enrollment-policy", "delete", "gcp-any"]);
    expect(del.stdout, `delete (stderr: ${del.stderr})`).toBe("enrollment policy gcp-any deleted\n");
    const bad = await weft(["enrollment-policy", "apply", "--name", "x"]);
    expect(bad.code, "apply without --provider").not.toBe(0);
    expect(bad.stderr, "apply without --provider").toMatch(/--provider/);
  }, 120_000);

  it("cli keys - create --instance-tag stores the selector and prints the agent command with --cloud", async () => {
    const res = await weft(["keys", "create", "--instance-provider", "aws", "--instance-tag", "env=prod"]);
    expect(res.code, `exit code (stderr: ${res.stderr})`).toBe(0);
    expect(res.stderr, "agent command").toMatch(/--join-key-file \S+ --cloud aws/);
    expect(res.stderr, "agent command: no key in it").not.toMatch(/weft_[A-Za-z0-9]/);
    const keys = await t.client.listJoinKeys();
    expect(keys.at(-1)?.instanceSelector, "stored selector").toEqual({ provider: "aws", tags: { env: "prod" } });
  }, 60_000);
});
