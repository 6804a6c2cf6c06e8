/**
 * Typed controller errors. Each names what went wrong and what to do; the REST
 * layer maps `status` to the HTTP code and `code` to the `error` field.
 */

export interface FieldIssue {
  path: string;
  message: string;
}

export abstract class ControllerError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
  readonly details: FieldIssue[] | undefined;
  /** Stable machine reason for logs and counters (`site_mismatch`, `expired`, …); the code when absent. */
  readonly reason: string | undefined;
  constructor(message: string, options?: { cause?: unknown; details?: FieldIssue[]; reason?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options?.details;
    this.reason = options?.reason;
  }
}

/** The stable reason of a refusal: the error's own, else its first detail (attestation reasons), else its code. */
export function refusalReason(err: ControllerError): string {
  return err.reason ?? err.details?.[0]?.message ?? err.code;
}

/** The request itself is malformed: fix the named fields and retry. */
export class ValidationError extends ControllerError {
  readonly status = 400;
  readonly code = "invalid_request";
}

/** No or wrong admin credentials. */
export class UnauthorizedError extends ControllerError {
  readonly status = 401;
  readonly code = "unauthorized";
}

/** The join key does not allow this enrollment (invalid, expired, revoked, used). */
export class JoinKeyRejectedError extends ControllerError {
  readonly status = 403;
  readonly code = "join_key_rejected";
}

/**
 * The agent's instance identity does not admit it: not in the inventory, not running, enrolling
 * from another address, bound to another node, or matching no selector. The message says which.
 */
export class InstanceRejectedError extends ControllerError {
  readonly status = 403;
  readonly code = "instance_rejected";
}

/**
 * The site the agent names is not the one what vouches for it says (its join key's or enrollment
 * policy's site, its instance's network), or nothing vouches and it names none.
 */
export class SiteRejectedError extends ControllerError {
  readonly status = 403;
  readonly code = "site_rejected";
}

/** Too many requests from one source address; `retryAfterSeconds` is also in the Retry-After header. */
export class RateLimitedError extends ControllerError {
  readonly status = 429;
  readonly code = "rate_limited";
  readonly retryable = true;
}

export class NotFoundError extends ControllerError {
  readonly status = 404;
  readonly code = "not_found";
}

/** Something the request claims belongs to another node (key, name, address). */
export class ConflictError extends ControllerError {
  readonly status = 409;
  readonly code = "conflict";
}

/** The overlay range has no free address left: widen `overlay.cidr`. */
export class AddressExhaustedError extends ControllerError {
  readonly status = 503;
  readonly code = "addresses_exhausted";
}

/** An enrollment with the same WireGuard key is still being made: retry shortly (its answer will be repeated). */
export class EnrollmentInProgressError extends ControllerError {
  readonly status = 503;
  readonly code = "enrollment_in_progress";
}

/** The state store (NATS) failed; the request may be retried. */
export class StoreUnavailableError extends ControllerError {
  readonly status = 503;
  readonly code = "store_unavailable";
  readonly retryable = true;
}

/**
 * A node asked for more workload identities than it may hold at once: the identities of its
 * workloads plus those it dropped within the release grace (identity.maxWorkloadIdentitiesPerNode).
 */
export class IdentityLimitError extends ControllerError {
  readonly status = 403;
  readonly code = "identity_limit";
}

/** The caller is known but not allowed to do this (e.g. host workloads with an identity it was not granted). */
export class ForbiddenError extends ControllerError {
  readonly status = 403;
  readonly code = "forbidden";
}

/**
 * Singleton work (an inventory sync, a gateway choice) asked of a controller that is not the
 * leader, or that stopped being it: the message names the leader to ask instead. Retryable.
 */
export class NotLeaderError extends ControllerError {
  readonly status = 503;
  readonly code = "not_leader";
  readonly retryable = true;
}
