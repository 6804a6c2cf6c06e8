/** bpf is a leaf: libbpf-ts and the datapath codecs import no other Weft workspace. */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const dir = fileURLToPath(new URL(".", import.meta.url));

describe("bpf dependencies", () => {
  it("bpf - src imports no other workspace", () => {
    const offending = readdirSync(dir)
      .filter((f) => f.endsWith(".ts"))
      .flatMap((f) =>
        [...readFileSync(`${dir}/${f}`, "utf8").matchAll(/^\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/gm)]
          .map((m) => m[1] ?? "")
          .filter((spec) => spec.startsWith("@weft/") || spec.startsWith("../../"))
          .map((spec) => `${f} imports ${spec}`),
      );
    expect(offending, "imports of other workspaces from bpf/src").toEqual([]);
  });
});
