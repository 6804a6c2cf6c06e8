/** CLI error reporting: one line naming what failed, and the exit code. */

export class UsageError extends Error {
  override name = "UsageError";
}

/** A zod validation error, recognised by shape so that this module (loaded by every command) does not load zod. */
function zodIssues(err: unknown): { path: PropertyKey[]; message: string }[] | undefined {
  if (!(err instanceof Error) || err.name !== "ZodError") return undefined;
  const issues = (err as { issues?: unknown }).issues;
  return Array.isArray(issues) ? (issues as { path: PropertyKey[]; message: string }[]) : undefined;
}

export function reportAndExit(err: unknown): never {
  const issues = zodIssues(err);
  if (issues) {
    const lines = issues.map((i) => `  ${i.path.map(String).join(".") || "(config)"}: ${i.message}`);
    process.stderr.write(`weft: invalid configuration:\n${lines.join("\n")}\n`);
    process.exit(2);
  }
  const message = err instanceof Error ? err.message : String(err);
  // The cause is shown unless the message already carries it.
  const cause = err instanceof Error && err.cause instanceof Error && !message.includes(err.cause.message) ? ` (${err.cause.message})` : "";
  process.stderr.write(`weft: ${message}${cause}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
