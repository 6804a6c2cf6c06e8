import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { agentEntry, agentNodeFlags, checkoutAgentNodeFlags } from "./launcher.js";

const checkout = fileURLToPath(new URL("../../..", import.meta.url));
const launcher = readFileSync(new URL("../../../packaging/bin/weft", import.meta.url), "utf8");

describe("lab launcher", () => {
  it("launcher - the package's agent flags are read from /usr/bin/weft's agent case", () => {
    const flags = checkoutAgentNodeFlags(checkout);
    expect(flags, "flags of packaging/bin/weft").toContain("--max-semi-space-size=1");
    expect(flags.every((f) => f.startsWith("--")), `every one a flag: ${flags.join(" ")}`).toBe(true);
    expect(agentNodeFlags('#!/bin/sh\nexec /usr/lib/weft/node /usr/lib/weft/lib/main.js "$@"\n'), "an older launcher without the case").toEqual([]);
    expect(agentNodeFlags('case "$1" in\n  agent) set -- --no-opt /usr/lib/weft/lib/main.js "$@" ;;\nesac\n'), "a launcher running main.js for the agent").toEqual(["--no-opt"]);
  });

  it("launcher - a bundle's agent runs its own entry, agent.cjs, when the bundle has one", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-launcher-"));
    try {
      const main = join(dir, "main.js");
      writeFileSync(main, "");
      expect(agentEntry(main), "a bundle from before agent.cjs, or cli/dist").toBe(main);
      writeFileSync(join(dir, "agent.cjs"), "");
      expect(agentEntry(main)).toBe(join(dir, "agent.cjs"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("launcher - this node accepts the agent's flags, and they reach V8", () => {
    const flags = agentNodeFlags(launcher);
    const r = spawnSync(process.execPath, [...flags, "-e", "console.log(require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size)"], { encoding: "utf8" });
    expect(r.status, `node ${flags.join(" ")}: ${r.stderr}`).toBe(0);
    expect(Number(r.stdout), "new space of 1 MB semi-spaces (2 × 1 MB at most)").toBeLessThanOrEqual(2 * 1024 * 1024);
  });
});
