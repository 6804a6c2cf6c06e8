/**
 * Typed errors for the lab. Each class is one condition a caller can act on; callers branch on
 * the class (or its fields), never on message text. Every error names the operation it wraps.
 */

/** Base class for every error the lab throws. */
export class LabError extends Error {
  override name = "LabError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A command (ip, iptables, sysctl, …) exited non-zero, was killed, or could not be started. */
export class LabCommandError extends LabError {
  override name = "LabCommandError";
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  constructor(
    fields: {
      argv: readonly string[];
      exitCode: number | null;
      signal?: NodeJS.Signals | null;
      stderr: string;
      /** Extra context, e.g. the failing line of an `ip -batch` script. */
      detail?: string;
    },
    options?: { cause?: unknown },
  ) {
    const why =
      fields.exitCode !== null
        ? `exit ${fields.exitCode}`
        : fields.signal
          ? `killed by ${fields.signal}`
          : "could not run";
    const stderr = fields.stderr.trim();
    super(
      `${fields.argv.join(" ")}: ${why}${fields.detail ? ` (${fields.detail})` : ""}` +
        (stderr ? `: ${stderr}` : ""),
      options,
    );
    this.argv = fields.argv;
    this.exitCode = fields.exitCode;
    this.signal = fields.signal ?? null;
    this.stderr = fields.stderr;
  }
}

/** Lab options failed validation (e.g. a prefix that would make invalid names). */
export class LabOptionsError extends LabError {
  override name = "LabOptionsError";
}

/** The lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) for namespaces. */
export class LabPermissionError extends LabError {
  override name = "LabPermissionError";
}

/**
 * A namespace the lab wants to create already exists but the lab's state file has no record of
 * creating it. The lab never adopts or changes what it did not make: delete the namespace
 * (`ip netns del <netns>`) if it is stale, or use another prefix.
 */
export class LabConflictError extends LabError {
  override name = "LabConflictError";
  readonly netns: readonly string[];
  constructor(netns: readonly string[], statePath: string) {
    super(
      `lab up: namespace(s) ${netns.join(", ")} exist but were not created by this lab ` +
        `(no record in ${statePath}); remove them with \`ip netns del\` or choose another prefix`,
    );
    this.netns = netns;
  }
}

/** A host name that is not part of the topology. `validHosts` lists what is accepted. */
export class UnknownHostError extends LabError {
  override name = "UnknownHostError";
  readonly host: string;
  readonly validHosts: readonly string[];
  constructor(host: string, validHosts: readonly string[]) {
    super(`unknown lab host "${host}"; valid hosts: ${validHosts.join(", ")}`);
    this.host = host;
    this.validHosts = validHosts;
  }
}

/** The host's namespace does not exist: the lab is down (run labUp first). */
export class LabNotUpError extends LabError {
  override name = "LabNotUpError";
  readonly netns: string;
  constructor(netns: string) {
    super(`namespace ${netns} does not exist; is the lab up? (run labUp / \`weft lab up\`)`);
    this.netns = netns;
  }
}

/** The lab's state file exists but cannot be read or parsed. */
export class LabStateError extends LabError {
  override name = "LabStateError";
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(`lab state file ${path} is unreadable${reason}; remove it only after checking \`ip netns list\``, options);
    this.path = path;
  }
}
