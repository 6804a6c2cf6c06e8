/** Turning zod failures into field-level messages for API errors. */
import type { z } from "zod";
import { ValidationError, type FieldIssue } from "./errors.js";

export function zodIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.length === 0 ? "(body)" : issue.path.map(String).join("."),
    message: issue.message,
  }));
}

/** Parse `input` with `schema` or throw a ValidationError naming each bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const details = zodIssues(parsed.error);
  throw new ValidationError(`${what} is invalid: ${details.map((d) => `${d.path}: ${d.message}`).join("; ")}`, { details });
}
