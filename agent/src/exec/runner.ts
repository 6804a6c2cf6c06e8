/**
 * agent/exec — runs `ip`, `wg`, `iptables`, `sysctl` as argv arrays (never through a shell),
 * optionally inside a network namespace via `ip netns exec <ns>`. Every part of the agent that
 * changes the host (wireguard/, net/, datapath/, workloads/) talks to the system through a
 * `CommandRunner`, so tests can substitute the fake in `runner_fake.ts`.
 */
import { spawn } from "node:child_process";
import { CommandError } from "./errors.js";

export interface RunOptions {
  /** Kill the command after this long; default 10 s. */
  timeoutMs?: number;
  /** Written to the command's standard input (a pipe), which is then closed; default: no input. */
  input?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface CommandRunner {
  /** Namespace commands run in, or undefined for the current one. */
  readonly netns: string | undefined;
  /** Runs argv; resolves on exit code 0, rejects with `CommandError` otherwise. */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
}

export interface CommandRunnerOptions {
  netns?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The argv prefix that runs a command inside `netns` (empty when netns is undefined). */
export function netnsPrefix(netns: string | undefined): string[] {
  return netns === undefined ? [] : ["ip", "netns", "exec", netns];
}

/** A runner that spawns real processes. */
export function createCommandRunner(options: CommandRunnerOptions = {}): CommandRunner {
  const netns = options.netns;
  const defaultTimeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    netns,
    run: (argv, runOptions) =>
      runArgv([...netnsPrefix(netns), ...argv], runOptions?.timeoutMs ?? defaultTimeout, runOptions?.input),
  };
}

function runArgv(argv: readonly string[], timeoutMs: number, input: string | undefined): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new TypeError("runArgv: empty argv"));
  return new Promise((resolve, reject) => {
    const child =
      input === undefined ? spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs }) : spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], timeout: timeoutMs });
    if (input !== undefined) {
      // A command that exits without reading all of it closes the pipe: its exit status says what went wrong, not the EPIPE.
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(input);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: Error | undefined;
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      spawnError = e;
    });
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (spawnError !== undefined) {
        reject(
          new CommandError(
            argv,
            { exitCode: null, stderr, reason: `cannot run ${file}: ${spawnError.message}` },
            { cause: spawnError },
          ),
        );
      } else if (code === 0) {
        resolve({ stdout, stderr });
      } else {
        const reason = signal === "SIGTERM" && code === null ? `timed out after ${timeoutMs} ms` : undefined;
        reject(
          new CommandError(argv, {
            exitCode: code,
            signal,
            stderr,
            ...(reason === undefined ? {} : { reason }),
          }),
        );
      }
    });
  });
}
