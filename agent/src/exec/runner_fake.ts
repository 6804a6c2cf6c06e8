/**
 * A fake `CommandRunner` for tests: records every argv and answers from a
 * handler, so logic above the runner can be tested without root, `ip` or `wg`.
 */
import { CommandError } from "./errors.js";
import type { CommandRunner, RunOptions, RunResult } from "./runner.js";

export interface FakeCall {
  argv: string[];
  /** What the command was given on stdin (an `ip -batch -`'s commands, an `iptables-restore`'s rules). */
  input?: string;
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
      calls.push({ argv: [...argv], ...(options?.input === undefined ? {} : { input: options.input }) });
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

/** Each call as its command line; an `ip -batch -` as the `ip` commands it ran, in order. */
export function commandLines(calls: readonly FakeCall[]): string[] {
  return calls.flatMap((c) =>
    c.argv.join(" ") === "ip -batch -" ? (c.input ?? "").split("\n").filter((l) => l !== "").map((l) => `ip ${l}`) : [c.argv.join(" ")],
  );
}
