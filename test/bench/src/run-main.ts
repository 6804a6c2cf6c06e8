/** How a benchmark script ends: its exit code, 130 after Ctrl-C (everything torn down), 1 with the error and its cause. */
import { BenchInterruptedError } from "./errors.js";

export function runMain(main: () => Promise<number>, say: (line: string) => void): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof BenchInterruptedError) {
        say(`weft bench: ${err.message}; everything was torn down`);
        process.exit(130);
      }
      say(`weft bench: ${err instanceof Error ? err.message : String(err)}`);
      if (err instanceof Error && err.cause) say(`  cause: ${err.cause instanceof Error ? err.cause.message : String(err.cause)}`);
      process.exit(1);
    },
  );
}
