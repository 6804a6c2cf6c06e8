/**
 * Request bodies, validated by the server before any handler runs: each route names its body's
 * schema (the same one the OpenAPI document shows) and the server parses the body with it once.
 * A body that fails answers 400 `invalid_request` naming each bad field (`<what> is invalid:
 * <field>: <problem>; …`, fields as fieldPath writes them); the handler gets the parsed, typed value.
 */
import type { z } from "zod";
import type { FieldIssue } from "../errors.js";
import { fieldIssues, invalid } from "../validation.js";

export interface RouteBody<B> {
  schema: z.ZodType<B>;
  /** Names the body in errors: `enrollment request`, `policy`. */
  what: string;
  /** An absent (or null) body reads as `{}`: routes whose every field is optional. */
  emptyIsObject?: boolean;
  /** Refusals before the schema, on the raw body (a field the client must never send); throws a ValidationError. */
  screen?(raw: unknown): void;
  /** Checks the schema cannot express, on the parsed value (a key's checksum); each issue names its field. */
  check?(value: B): FieldIssue[];
}

/** The body as `spec` reads it, or a ValidationError (400) naming each bad field. */
export function parseBody<B>(spec: RouteBody<B>, raw: unknown): B {
  spec.screen?.(raw);
  const input = (raw === undefined || raw === null) && spec.emptyIsObject ? {} : raw;
  const parsed = spec.schema.safeParse(input);
  if (!parsed.success) throw invalid(spec.what, fieldIssues(parsed.error));
  const issues = spec.check?.(parsed.data) ?? [];
  if (issues.length > 0) throw invalid(spec.what, issues);
  return parsed.data;
}
