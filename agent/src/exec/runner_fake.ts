/**
 * A fake `CommandRunner` for tests: records every argv and answers from a
 * handler, so logic above the runner can be tested without root, `ip` or `wg`.
 */
import { CommandError } from "./errors.js";
import type { CommandRunner, RunOptions, RunResult } from "./runner.js";

export interface FakeCall {
  argv: string[];
}

/** Return stdout, a full result, or throw; undefined means success with empty output. */
export type FakeHandler = (argv: readonly string[], options: RunOptions | undefined) => string | RunResult | undefined;

export interface FakeRunner extends CommandRunner {
  readonly calls: FakeCall[];
}

export function createFakeRunner(handler: FakeHandler, netns?: string): FakeRunner {
  const calls: FakeCall[] = [];
  return {
    netns,
    calls,
    run(argv, options) {
      calls.push({ argv: [...argv] });
      try {
        const out = handler(argv, options);
        if (out === undefined) return Promise.resolve({ stdout: "", stderr: "" });
        return Promise.resolve(typeof out === "string" ? { stdout: out, stderr: "" } : out);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    },
  };
}

/** The error a real runner raises for a failed command, for handlers to throw. */
export function commandFailure(argv: readonly string[], stderr: string, exitCode = 1): CommandError {
  return new CommandError(argv, { exitCode, stderr });
}
