/**
 * Runs one command from an argv array (never a shell string) and collects its output.
 * A non-zero exit becomes a LabCommandError naming the command, its exit code and stderr.
 */
import { spawn } from "node:child_process";
import { LabCommandError } from "./errors.js";

export interface RunOptions {
  /** Written to the command's stdin (e.g. an `ip -batch -` script). */
  input?: string;
  /** Exit codes that are not errors (default only 0). */
  okExitCodes?: readonly number[];
  /** Kill the command after this long (default 30 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs argv to completion without checking its exit code. Rejects only if it cannot start. */
export function runRaw(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new Error("run: empty argv"));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs ?? 30_000,
      ...(opts.env ? { env: opts.env } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", (err) =>
      reject(new LabCommandError({ argv, exitCode: null, stderr: err.message }, { cause: err })),
    );
    child.on("close", (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
    // A command that exits without reading stdin makes the write fail with EPIPE; that is fine.
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}

/** Runs argv and throws LabCommandError unless it exits with an accepted code. */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await runRaw(argv, opts);
  const ok = opts.okExitCodes ?? [0];
  if (result.exitCode === null || !ok.includes(result.exitCode)) {
    throw new LabCommandError({ argv, exitCode: result.exitCode, signal: result.signal, stderr: result.stderr });
  }
  return result;
}

/**
 * Runs an `ip -batch -` script (optionally inside a namespace). On failure the error names the
 * script line that failed, which `ip` reports only as a line number.
 */
export async function runIpBatch(lines: readonly string[], netns?: string): Promise<void> {
  if (lines.length === 0) return;
  const argv = ["ip", ...(netns ? ["-n", netns] : []), "-batch", "-"];
  const result = await runRaw(argv, { input: lines.join("\n") + "\n" });
  if (result.exitCode === 0) return;
  const lineNo = /Command failed -:(\d+)/.exec(result.stderr)?.[1];
  const failed = lineNo ? lines[Number(lineNo) - 1] : undefined;
  throw new LabCommandError({
    argv,
    exitCode: result.exitCode,
    signal: result.signal,
    stderr: result.stderr,
    ...(failed ? { detail: `failed at line ${lineNo}: ip ${failed}` } : {}),
  });
}

/** Maps items through fn with at most `limit` in flight; results keep input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
