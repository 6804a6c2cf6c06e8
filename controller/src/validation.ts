/**
 * Turning zod failures into field-level messages: one way to name a field in a document
 * (`fieldPath`) for everything a client sends (API bodies, workloads requests), and
 * `parseOrThrow` for the controller's own config.
 */
import { fieldPath as documentFieldPath } from "@weft/protocol";
import type { z } from "zod";
import { ValidationError, type FieldIssue } from "./errors.js";

/** A field as a user reads the document (protocol's fieldPath); the whole body is `(body)`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return documentFieldPath(path, "(body)");
}

/** Each issue of a failed parse, with its field named by fieldPath. */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ path: fieldPath(issue.path), message: issue.message }));
}

/** The ValidationError for `what` (`policy`, `enrollment request`) with these issues: `<what> is invalid: <path>: <message>; …`. */
export function invalid(what: string, details: FieldIssue[], cause?: unknown): ValidationError {
  return new ValidationError(`${what} is invalid: ${details.map((d) => `${d.path}: ${d.message}`).join("; ")}`, { details, ...(cause === undefined ? {} : { cause }) });
}

/**
 * Config paths as the config file reads (`inventory.accounts.0.regions`), the notation the CLI
 * uses for the same sections of the file.
 */
export function zodIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.length === 0 ? "(body)" : issue.path.map(String).join("."),
    message: issue.message,
  }));
}

/** Parse config `input` with `schema` or throw a ValidationError naming each bad field (config paths). */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw invalid(what, zodIssues(parsed.error));
}
