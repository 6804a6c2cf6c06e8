/** Typed agent errors: what failed and whether retrying can help. */

export class AgentError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options?.retryable ?? false;
  }
}

/** The controller refused the enrollment (bad key, conflict, invalid request). Not retryable. */
export class EnrollmentRejectedError extends AgentError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message, { retryable: false });
  }
}

/** The controller could not be reached or failed; retry later. */
export class ControllerUnavailableError extends AgentError {
  constructor(message: string, cause?: unknown) {
    super(message, { cause, retryable: true });
  }
}

/**
 * The controller's certificate is not vouched for by --ca-hash: a different
 * controller, a man in the middle, or a stale hash. Nothing was sent to it. Not retryable.
 */
export class ControllerIdentityError extends AgentError {
  constructor(
    message: string,
    /** Pins of the certificates the server presented, leaf first (empty when it failed verification later). */
    readonly presented: string[],
    cause?: unknown,
  ) {
    super(message, { cause, retryable: false });
  }
}

/** The agent's on-disk state is missing or unusable. */
export class StateError extends AgentError {}

/** The eBPF datapath could not be set up or changed (no bpffs, verifier refusal, attach failure). */
export class DatapathError extends AgentError {}

/** A workload could not be plumbed (its network namespace is missing, a command failed). */
export class WorkloadError extends AgentError {}
