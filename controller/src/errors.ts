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
  constructor(message: string, options?: { cause?: unknown; details?: FieldIssue[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options?.details;
  }
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

/** The state store (NATS) failed; the request may be retried. */
export class StoreUnavailableError extends ControllerError {
  readonly status = 503;
  readonly code = "store_unavailable";
  readonly retryable = true;
}

/** The caller is known but not allowed to do this (e.g. host workloads in a namespace its labels do not grant). */
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
