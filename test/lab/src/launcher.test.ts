import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { agentNodeFlags, checkoutAgentNodeFlags } from "./launcher.js";

const checkout = fileURLToPath(new URL("../../..", import.meta.url));
const launcher = readFileSync(new URL("../../../packaging/bin/weft", import.meta.url), "utf8");

describe("lab launcher", () => {
  it("launcher - the package's agent flags are read from /usr/bin/weft's agent case", () => {
    const flags = checkoutAgentNodeFlags(checkout);
    expect(flags, "flags of packaging/bin/weft").toContain("--max-semi-space-size=1");
    expect(flags.every((f) => f.startsWith("--")), `every one a flag: ${flags.join(" ")}`).toBe(true);
    expect(agentNodeFlags('#!/bin/sh\nexec /usr/lib/weft/node /usr/lib/weft/lib/main.js "$@"\n'), "an older launcher without the case").toEqual([]);
  });

  it("launcher - this node accepts the agent's flags, and they reach V8", () => {
    const flags = agentNodeFlags(launcher);
    const r = spawnSync(process.execPath, [...flags, "-e", "console.log(require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size)"], { encoding: "utf8" });
    expect(r.status, `node ${flags.join(" ")}: ${r.stderr}`).toBe(0);
    expect(Number(r.stdout), "new space of 1 MB semi-spaces (2 × 1 MB at most)").toBeLessThanOrEqual(2 * 1024 * 1024);
  });
});
