/** CLI error reporting: one line naming what failed, and the exit code. */
import { ZodError } from "zod";

export class UsageError extends Error {
  override name = "UsageError";
}

export function reportAndExit(err: unknown): never {
  if (err instanceof ZodError) {
    const lines = err.issues.map((i) => `  ${i.path.join(".") || "(config)"}: ${i.message}`);
    process.stderr.write(`weft: invalid configuration:\n${lines.join("\n")}\n`);
    process.exit(2);
  }
  const message = err instanceof Error ? err.message : String(err);
  // The cause is shown unless the message already carries it.
  const cause = err instanceof Error && err.cause instanceof Error && !message.includes(err.cause.message) ? ` (${err.cause.message})` : "";
  process.stderr.write(`weft: ${message}${cause}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
