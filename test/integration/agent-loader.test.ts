/**
 * packaging/agent.cjs, the installed `weft agent`'s entry: it loads the agent's bundle with the V8
 * code cache beside it and tells the agent whether the cache was used. Run here with a stand-in
 * bundle (the real one is built and run as installed by e2e install and the start-up benchmark).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { repoRoot } from "@weft/lab";

const FLAGS = ["--max-semi-space-size=1", "--no-opt"];
const BUNDLE = `
exports.main = (argv, load) => process.stdout.write(JSON.stringify({ args: argv.slice(2), load }));
exports.importDeferred = async () => { globalThis.deferredRan = true; };
`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "weft-agent-loader-"));
  copyFileSync(join(repoRoot(), "packaging", "agent.cjs"), join(dir, "agent.cjs"));
  writeFileSync(join(dir, "agent-bundle.cjs"), BUNDLE);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], flags = FLAGS): { status: number | null; out: { args: string[]; load: { codeCache: string } } | undefined; stderr: string } {
  const r = spawnSync(process.execPath, [...flags, join(dir, "agent.cjs"), ...args], { encoding: "utf8" });
  return { status: r.status, out: r.stdout ? (JSON.parse(r.stdout) as { args: string[]; load: { codeCache: string } }) : undefined, stderr: r.stderr };
}

describe("the installed agent's loader (packaging/agent.cjs)", () => {
  it("agent loader - runs the bundle's main with the arguments, and says when there is no cache", () => {
    const r = run(["agent", "--config", "/etc/weft/agent.yaml"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toEqual({ args: ["agent", "--config", "/etc/weft/agent.yaml"], load: { codeCache: "missing" } });
  });

  it("agent loader - --write-code-cache writes the cache, which the next start uses", () => {
    const w = run(["--write-code-cache"]);
    expect(w.status, w.stderr).toBe(0);
    expect(w.out, "nothing run").toBeUndefined();
    expect(existsSync(join(dir, "agent-bundle.code-cache"))).toBe(true);
    expect(run(["agent"]).out?.load.codeCache).toBe("used");
  });

  it("agent loader - a cache made under other V8 flags, or for another bundle, is refused and the bundle still runs", () => {
    expect(run(["--write-code-cache"]).status).toBe(0);
    const otherFlags = run(["agent"], ["--max-semi-space-size=1"]);
    expect(otherFlags.status, otherFlags.stderr).toBe(0);
    expect(otherFlags.out?.load.codeCache, "flags differ").toBe("rejected");
    writeFileSync(join(dir, "agent-bundle.cjs"), `${BUNDLE}\n// a newer build\n`);
    expect(run(["agent"]).out?.load.codeCache, "the bundle changed").toBe("rejected");
  });
});
