import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bundleCheckout, unitRuntimeEnv } from "./launcher.js";

const checkout = fileURLToPath(new URL("../../..", import.meta.url));
const built = existsSync(join(checkout, "cli", "dist", "main.js"));

describe("bench launcher", () => {
  it("launcher - takes the runtime settings of Environment= lines, quoted or not, and nothing else", () => {
    const unit = ["[Service]", "Environment=XTABLES_LOCKFILE=/run/weft/xtables.lock", 'Environment="NODE_OPTIONS=--max-semi-space-size=1 --v8-pool-size=1" MALLOC_ARENA_MAX=2', "Environment=GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072", "ExecStart=/usr/bin/weft agent"].join("\n");
    expect(unitRuntimeEnv(unit)).toEqual({ NODE_OPTIONS: "--max-semi-space-size=1 --v8-pool-size=1", MALLOC_ARENA_MAX: "2", GLIBC_TUNABLES: "glibc.malloc.trim_threshold=131072" });
  });

  it.skipIf(!built)("launcher - the checkout's package bundle runs, with the eBPF objects and koffi where the package puts them", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-bench-bundle-"));
    try {
      const main = bundleCheckout(checkout, dir);
      expect(main, "the bundle's entry").toBe(join(dir, "lib", "main.js"));
      const r = spawnSync(process.execPath, [main, "--version"], { encoding: "utf8" });
      expect(`${r.status} ${r.stdout.trim()}`, `weft --version from the bundle; stderr: ${r.stderr}`).toBe("0 0.1.0");
      for (const f of ["bpf/dist/weft_overlay_in.o", "node_modules/koffi/package.json", "controller/data/trust"]) expect(existsSync(join(dir, f)), `${f} in the package's layout`).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
