/**
 * `weft keys create` against a real controller, run as the built CLI
 * (cli/dist/main.js, made by `npx tsc -b`): the key on stdout, and on stderr the
 * ready-to-use `weft agent` command with the https URL and the CA pin. Admin
 * commands over https trust the controller by `--ca-hash` and refuse a wrong one.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { JoinKeyCreated } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestController, type TestController } from "../../../controller/src/testing.js";
import { agentCommandHint } from "./keys.js";

const exec = promisify(execFile);
const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "main.js");
const built = existsSync(CLI);
if (!built) console.warn(`keys.test: the built-CLI tests are skipped: ${CLI} is missing; run \`npx tsc -b\``);

let t: TestController;
beforeAll(async () => {
  t = await startTestController();
});
afterAll(async () => {
  await t?.stop();
});

async function weft(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const env = { ...process.env };
    delete env.WEFT_ADMIN_TOKEN;
    delete env.WEFT_CA_HASH;
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("cli keys", () => {
  it.skipIf(!built)("cli keys - `weft keys create` over the local socket prints the key, then the agent command with the https URL and CA pin", async () => {
    const res = await weft(["keys", "create", "--controller-state-dir", t.stateDir]);
    expect(res.code, `exit code (stderr: ${res.stderr})`).toBe(0);
    const key = res.stdout.trim();
    expect(key, "stdout").toMatch(/^weft_\S+$/);
    const port = new URL(t.running.apiUrl).port;
    expect(res.stderr, "stderr").toContain(`weft agent --controller https://127.0.0.1:${port} --ca-hash ${t.running.caHash} --join-key-file /etc/weft/join-key`);
    expect(res.stderr, "stderr: the key is not in the printed command").not.toContain(key);
  });

  it.skipIf(!built)("cli keys - over https --api the CLI trusts the controller by --ca-hash; a wrong hash exits 1 naming the mismatch", async () => {
    const token = ["--token", t.running.adminToken];
    const ok = await weft(["keys", "create", "--json", "--api", t.running.apiUrl, "--ca-hash", t.running.caHash!, ...token]);
    expect(ok.code, `exit code with the right pin (stderr: ${ok.stderr})`).toBe(0);
    const created = JoinKeyCreated.parse(JSON.parse(ok.stdout));
    expect(created.controller?.caHash, "controller.caHash in --json").toBe(t.running.caHash);

    const wrong = await weft(["keys", "list", "--api", t.running.apiUrl, "--ca-hash", `sha256:${"1".repeat(64)}`, ...token]);
    expect(wrong.code, "exit code with a wrong pin").toBe(1);
    expect(wrong.stderr, "stderr with a wrong pin").toContain(`controller certificate does not match --ca-hash (got ${t.running.caHash})`);
  });

  it("cli keys - the agent command hint prefers the https --api the admin used, and says when the API is plain HTTP", () => {
    const base = { id: "k1", reusable: false, labels: {}, createdAt: "", expiresAt: "", uses: 0, state: "active" as const, key: "weft_k1_secret" };
    const hash = `sha256:${"a".repeat(64)}`;
    const controller = { caHash: hash, urls: ["https://198.19.0.2:8080", "https://10.0.0.5:8080"] };
    expect(agentCommandHint({ ...base, controller }, undefined), "via the socket").toBe(
      `enroll a host: put the key printed above in /etc/weft/join-key (mode 0600, root only): never pass it as an argument, every local user can read a process's arguments; then\n  weft agent --controller https://198.19.0.2:8080 --ca-hash ${hash} --join-key-file /etc/weft/join-key\n(the controller's certificate also covers https://10.0.0.5:8080)\n`,
    );
    expect(agentCommandHint({ ...base, controller }, "https://10.0.0.5:8080/"), "via --api").toContain(`--controller https://10.0.0.5:8080 --ca-hash ${hash}`);
    expect(agentCommandHint(base, undefined), "plain HTTP controller").toMatch(/plain HTTP: the key crosses the network in clear text/);
  });
});
