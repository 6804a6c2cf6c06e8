/**
 * The documented example configs the package ships (packaging/config/agent.yaml and
 * controller.yaml, installed in /usr/share/doc/weft/examples): each parses with its schema as it
 * stands, and together with its `#key:` alternatives it names every key the schema has, so the
 * documentation cannot fall behind agent/src/config.ts or controller/src/config.ts.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { AgentConfig } from "@weft/agent";
import { ControllerConfig } from "@weft/controller";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";

const example = (name: string) => readFileSync(fileURLToPath(new URL(`../../../packaging/config/${name}`, import.meta.url)), "utf8");

/** The example with its `#key: value` alternatives made live (explanations start with `# `). */
function withAlternatives(text: string): unknown {
  return parse(text.replace(/^(\s*)#([A-Za-z][A-Za-z0-9]*:.*)$/gm, "$1$2"));
}

type JsonSchema = { properties?: Record<string, JsonSchema>; items?: JsonSchema; anyOf?: JsonSchema[]; oneOf?: JsonSchema[] };

/** Every key path of a JSON schema: `a.b`, with `[]` for array items; union members merged. */
function schemaPaths(s: JsonSchema, prefix = ""): Set<string> {
  const out = new Set<string>();
  for (const alt of [...(s.anyOf ?? []), ...(s.oneOf ?? [])]) for (const p of schemaPaths(alt, prefix)) out.add(p);
  if (s.items) for (const p of schemaPaths(s.items, `${prefix}[]`)) out.add(p);
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    const path = prefix === "" ? k : `${prefix}.${k}`;
    out.add(path);
    for (const p of schemaPaths(v, path)) out.add(p);
  }
  return out;
}

/** Every key path of a parsed YAML document, in the same notation. */
function docPaths(v: unknown, prefix = ""): Set<string> {
  const out = new Set<string>();
  if (Array.isArray(v)) for (const item of v) for (const p of docPaths(item, `${prefix}[]`)) out.add(p);
  else if (v !== null && typeof v === "object") {
    for (const [k, child] of Object.entries(v)) {
      const path = prefix === "" ? k : `${prefix}.${k}`;
      out.add(path);
      for (const p of docPaths(child, path)) out.add(p);
    }
  }
  return out;
}

describe("packaging example configs", () => {
  for (const [file, schema] of [
    ["agent.yaml", AgentConfig],
    ["controller.yaml", ControllerConfig],
  ] as const) {
    it(`packaging - ${file} parses with its schema as shipped`, () => {
      const parsed = (schema as z.ZodType).safeParse(parse(example(file)));
      expect(parsed.success, `${file}: ${parsed.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`).toBe(true);
    });

    it(`packaging - ${file} documents every key of the schema, and no key the schema lacks`, () => {
      const want = schemaPaths(z.toJSONSchema(schema as z.ZodType, { io: "input", unrepresentable: "any" }) as JsonSchema);
      const got = docPaths(withAlternatives(example(file)));
      expect([...want].filter((p) => !got.has(p)).sort(), `${file}: keys of the schema it does not mention`).toEqual([]);
      expect([...got].filter((p) => !want.has(p)).sort(), `${file}: keys it documents that the schema does not have`).toEqual([]);
    });
  }
});
