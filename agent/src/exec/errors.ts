/** The command runner's one error: a command failed, with the facts a caller branches on. */
import { AgentError } from "../errors.js";

/** An `ip`/`wg`/`iptables`/`sysctl`/`wireguard-go` invocation failed (non-zero exit, signal, timeout or spawn error). */
export class CommandError extends AgentError {
  readonly argv: readonly string[];
  /** Exit code, or null when the process was killed by a signal or never started. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderr: string;
  constructor(
    argv: readonly string[],
    details: { exitCode: number | null; signal?: string | null; stderr: string; reason?: string },
    options?: { cause?: unknown },
  ) {
    const why = details.reason ?? (details.exitCode !== null ? `exit code ${details.exitCode}` : `signal ${details.signal ?? "unknown"}`);
    const err = details.stderr.trim();
    super(`${argv.join(" ")}: ${why}${err === "" ? "" : `: ${err}`}`, options);
    this.argv = argv;
    this.exitCode = details.exitCode;
    this.signal = details.signal ?? null;
    this.stderr = details.stderr;
  }
}
