/**
 * The REST API fuzzed by schemathesis (installed by scripts/setup.sh into .tools/venv) from its own
 * `GET /openapi.json`, over HTTPS trusting the controller's CA: every route gets a bounded number
 * of generated requests (explicit examples and fuzzing), once with the admin token and once
 * without. No response may be a 5xx, and every response must match the document (status code,
 * content type, headers, body schema).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestController, type TestController } from "../testing.js";

const SCHEMATHESIS = fileURLToPath(new URL("../../../.tools/venv/bin/schemathesis", import.meta.url));
const EXAMPLES_PER_ROUTE = 10;
const CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance", "response_schema_conformance"];

let t: TestController;
let dir: string;
let ca: string;

beforeAll(async () => {
  t = await startTestController();
  dir = await mkdtemp(join(tmpdir(), "weft-fuzz-"));
  ca = join(dir, "ca.pem");
  await writeFile(ca, t.running.caPem!);
});
afterAll(async () => {
  await t?.stop();
  await rm(dir, { recursive: true, force: true });
});

function schemathesis(headers: string[]): Promise<{ code: number; out: string }> {
  const args = ["run", `${t.running.apiUrl}/openapi.json`, "--tls-verify", ca, "-n", String(EXAMPLES_PER_ROUTE), "--checks", CHECKS.join(","), "--phases", "examples,fuzzing", "--seed", "1", "--no-color", "--max-response-time", "10"];
  for (const h of headers) args.push("-H", h);
  return new Promise((resolve) => {
    execFile(SCHEMATHESIS, args, { timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}\n${stderr}` });
    });
  });
}

/**
 * What a failing run says, within `max` characters: its failures first (each line cut, so a
 * generated body of thousands of characters does not push the operation and status out), then its
 * summary.
 */
function fuzzReport(out: string, max = 6000): string {
  const cut = (text: string) => text.split("\n").map((l) => (l.length > 300 ? `${l.slice(0, 300)}… (${l.length} characters)` : l)).join("\n");
  const at = out.indexOf("FAILURES");
  const summary = out.lastIndexOf("SUMMARY");
  const failures = at >= 0 ? cut(out.slice(at, summary > at ? summary : undefined)).slice(0, max - 2000) : "";
  return `${failures}\n…\n${cut(out.slice(summary >= 0 ? summary : -2000)).slice(-2000)}`;
}

describe("api fuzzing", () => {
  it("api fuzz - schemathesis is installed (scripts/setup.sh)", () => {
    expect(existsSync(SCHEMATHESIS), `${SCHEMATHESIS}: run scripts/setup.sh`).toBe(true);
  });

  for (const [what, headers] of [
    ["authenticated", () => [`Authorization: Bearer ${t.running.adminToken}`]],
    ["unauthenticated", () => []],
  ] as const) {
    it(`api fuzz - ${what}: no 5xx and every response matches /openapi.json`, { timeout: 300_000 }, async () => {
      const got = await schemathesis(headers());
      const summary = /(\d+) generated, (\d+) passed/.exec(got.out);
      expect(got.code, `schemathesis exit code; its report:\n${fuzzReport(got.out)}`).toBe(0);
      expect(Number(summary?.[1] ?? 0), "test cases generated").toBeGreaterThan(50);
      expect(summary?.[1], "every test case passed").toBe(summary?.[2]);
    });
  }
});
