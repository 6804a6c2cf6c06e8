/**
 * Files of documents an admin applies (`weft service apply -f`): YAML or JSON (JSON is YAML), one
 * document, a list, or several `---` documents. Every document is checked against its schema
 * before anything is sent, so a file with one bad document applies none; errors name the file, the
 * document and the field (`rules[1].ports[0].port`).
 */
import { parseAllDocuments } from "yaml";
import type { z } from "zod";
import { UsageError } from "./errors.js";

/** `ports.1.port` as a user reads the document: `ports[1].port`. */
export function fieldPath(path: readonly PropertyKey[], whole = "(document)"): string {
  if (path.length === 0) return whole;
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

export interface DocumentFileOptions<S extends z.ZodType> {
  schema: S;
  /** `service`, `policy`: names a document in errors. */
  what: string;
  /** The identity of a parsed document (`shop/api`): two with the same one in a file are refused. */
  idOf: (doc: z.infer<S>) => string;
}

/** The documents in a file's text, as written (the controller normalises them), each checked. Throws UsageError. */
export function parseDocumentFile<S extends z.ZodType>(text: string, source: string, o: DocumentFileOptions<S>): z.input<S>[] {
  const values: unknown[] = [];
  for (const doc of parseAllDocuments(text) as ReturnType<typeof parseAllDocuments> & unknown[]) {
    const firstError = doc.errors[0];
    if (firstError) throw new UsageError(`${source}: not YAML or JSON: ${firstError.message.split("\n")[0]}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) values.push(...(value as unknown[]));
    else values.push(value);
  }
  if (values.length === 0) throw new UsageError(`${source}: holds no ${o.what}`);
  const ids = new Set<string>();
  return values.map((value, i) => {
    const parsed = o.schema.safeParse(value);
    const which = values.length > 1 ? ` ${o.what} ${i + 1}` : "";
    if (!parsed.success) throw new UsageError(`${source}${which} is invalid: ${parsed.error.issues.map((iss) => `${fieldPath(iss.path)}: ${iss.message}`).join("; ")}`);
    const id = o.idOf(parsed.data);
    if (ids.has(id)) throw new UsageError(`${source}${which}: ${o.what} ${id} appears twice`);
    ids.add(id);
    return value as z.input<S>;
  });
}
