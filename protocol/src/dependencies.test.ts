/**
 * The direction of dependencies between workspaces: agent and controller talk
 * only through protocol, and protocol depends on neither. Test files may reach
 * across (a controller test uses the agent's key generator), product code not.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(".ts") && !path.endsWith(".test.ts") && !name.startsWith("testing") ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  return [...readFileSync(file, "utf8").matchAll(/^\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/gm)].map((m) => m[1] ?? "");
}

const forbidden: Record<string, string[]> = {
  protocol: ["@weft/controller", "@weft/agent", "@weft/lab", "controller/", "agent/"],
  agent: ["@weft/controller", "@weft/lab", "controller/", "cloud-adapters/"],
  controller: ["@weft/agent", "@weft/lab", "agent/"],
};

describe("dependencies", () => {
  for (const [pkg, banned] of Object.entries(forbidden)) {
    it(`dependencies - ${pkg} imports none of ${banned.join(", ")}`, () => {
      const offending = sources(join(root, pkg, "src")).flatMap((file) =>
        importsOf(file)
          .filter((spec) => banned.some((b) => spec.startsWith(b) || (spec.startsWith(".") && spec.includes(`/${b}`))))
          .map((spec) => `${relative(root, file)} imports ${spec}`),
      );
      expect(offending, `forbidden imports in ${pkg}`).toEqual([]);
    });
  }
});
