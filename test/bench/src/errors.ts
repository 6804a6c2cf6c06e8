/** The benchmark's own error: a step that could not be measured, naming the step. */
export class BenchError extends Error {
  override name = "BenchError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Ctrl-C (SIGINT) or SIGTERM arrived; the run stops at the next step and tears down. */
export class BenchInterruptedError extends BenchError {
  override name = "BenchInterruptedError";
  constructor(signal: string) {
    super(`interrupted by ${signal}`);
  }
}
