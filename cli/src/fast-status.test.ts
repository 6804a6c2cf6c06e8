import { describe, expect, it } from "vitest";
import { DEFAULT_AGENT_STATE_DIR } from "./defaults.js";
import { plainStatusArgs } from "./fast-status.js";

describe("fast status", () => {
  it("fast status - the plain forms of weft status are recognised with their options", () => {
    const cases: [string[], ReturnType<typeof plainStatusArgs>][] = [
      [["status"], { stateDir: DEFAULT_AGENT_STATE_DIR }],
      [["status", "--json"], { stateDir: DEFAULT_AGENT_STATE_DIR, json: true }],
      [["status", "--state-dir", "/x"], { stateDir: "/x" }],
      [["status", "--state-dir=/x", "--json"], { stateDir: "/x", json: true }],
      [["status", "--json", "--state-dir", "/var/lib/a b"], { stateDir: "/var/lib/a b", json: true }],
    ];
    for (const [argv, want] of cases) expect(plainStatusArgs(argv), argv.join(" ")).toEqual(want);
  });

  it("fast status - anything else is left to the full program (help, other commands, unknown or repeated options, a missing value)", () => {
    const others = [[], ["--help"], ["agent"], ["status", "--help"], ["status", "-h"], ["status", "--jsn"], ["status", "--json", "--json"], ["status", "--state-dir"], ["status", "--state-dir", "--json"], ["status", "--state-dir="], ["status", "--state-dir", "/a", "--state-dir", "/b"], ["status", "extra"], ["flows", "--json"]];
    for (const argv of others) expect(plainStatusArgs(argv), `[${argv.join(" ")}]`).toBeUndefined();
  });
});
