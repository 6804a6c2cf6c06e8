import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { unitRuntimeEnv } from "./launcher.js";

describe("bench launcher", () => {
  it("launcher - takes the runtime settings of Environment= lines, quoted or not, and nothing else", () => {
    const unit = ["[Service]", "Environment=XTABLES_LOCKFILE=/run/weft/xtables.lock", 'Environment="NODE_OPTIONS=--max-semi-space-size=1 --v8-pool-size=1" MALLOC_ARENA_MAX=2', "Environment=GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072", "ExecStart=/usr/bin/weft agent"].join("\n");
    expect(unitRuntimeEnv(unit)).toEqual({ NODE_OPTIONS: "--max-semi-space-size=1 --v8-pool-size=1", MALLOC_ARENA_MAX: "2", GLIBC_TUNABLES: "glibc.malloc.trim_threshold=131072" });
  });

  it("launcher - the package's agent unit sets node's options", () => {
    const env = unitRuntimeEnv(readFileSync(new URL("../../../packaging/systemd/weft-agent.service", import.meta.url), "utf8"));
    expect(env.NODE_OPTIONS, `NODE_OPTIONS of weft-agent.service; got ${JSON.stringify(env)}`).toMatch(/--max-semi-space-size=\d+/);
  });
});
