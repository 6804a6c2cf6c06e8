/**
 * Typed errors of the NATS layer: one class per condition, each saying what the
 * caller should do. Retry decisions read `retryable`, never the message text.
 * No error message ever carries a seed.
 */

/** Base class; `code` is a stable discriminant for logs and callers. */
export abstract class NatsLayerError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
}

/** A node id that does not match NODE_ID_PATTERN (`n-` + 16 lowercase hex digits). */
export class InvalidNodeIdError extends NatsLayerError {
  override readonly name = "InvalidNodeIdError";
  readonly code = "invalid_node_id";
  readonly retryable = false;
  constructor(readonly nodeId: string) {
    super(`invalid node id ${JSON.stringify(nodeId.slice(0, 64))}: want "n-" followed by 16 lowercase hex digits`);
  }
}

/** A string that is not a NATS user public nkey (56 chars, starts with 'U', valid checksum). */
export class InvalidUserKeyError extends NatsLayerError {
  override readonly name = "InvalidUserKeyError";
  readonly code = "invalid_user_key";
  readonly retryable = false;
  constructor(reason: string, options?: { cause?: unknown }) {
    // The offending value is deliberately not echoed: a caller that passes a seed by
    // mistake must not find it in a log line.
    super(`userPublicKey: ${reason}; want a NATS user public nkey (56 characters starting with "U")`, options);
  }
}

/** The authority state on disk is missing, unreadable, corrupt or too permissive. */
export class AuthorityStateError extends NatsLayerError {
  override readonly name = "AuthorityStateError";
  readonly code = "authority_state";
  readonly retryable = false;
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`nats authority ${path}: ${reason}`, options);
  }
}

/** No `nats-server` binary could be found for the embedded server. */
export class NatsServerNotFoundError extends NatsLayerError {
  override readonly name = "NatsServerNotFoundError";
  readonly code = "nats_server_not_found";
  readonly retryable = false;
  constructor(
    readonly searched: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(
      `nats-server not found (searched ${searched.join(", ")}): run scripts/setup.sh (it installs nats-server 2.15 ` +
        `into .tools/bin), set WEFT_NATS_SERVER to a nats-server 2.11 or newer, or configure the controller with the URL of an existing NATS server`,
      options,
    );
  }
}

/** The embedded nats-server did not become ready, or exited while starting. */
export class NatsServerStartError extends NatsLayerError {
  override readonly name = "NatsServerStartError";
  readonly code = "nats_server_start";
  readonly retryable = true;
  constructor(
    reason: string,
    readonly exitCode: number | null,
    readonly stderrTail: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(
      `embedded nats-server: ${reason}` + (stderrTail.length > 0 ? `; last output:\n  ${stderrTail.join("\n  ")}` : ""),
      options,
    );
  }
}

/**
 * The server answered a claims update with an error, or the system user may not
 * publish it. Retrying the same JWT will not help: read the description (the
 * server's words) and fix the configuration.
 */
export class ClaimsUpdateRejectedError extends NatsLayerError {
  override readonly name = "ClaimsUpdateRejectedError";
  readonly code = "claims_update_rejected";
  readonly retryable = false;
  constructor(
    readonly account: string,
    readonly description: string,
    options?: { cause?: unknown },
  ) {
    super(`nats claims update for account ${account}: rejected: ${description}`, options);
  }
}

/**
 * No server took the claims update (no responders, timeout, connection closed).
 * Retry; the revocation is already recorded in the authority and is part of every
 * account JWT signed from now on.
 */
export class ClaimsUpdateUnavailableError extends NatsLayerError {
  override readonly name = "ClaimsUpdateUnavailableError";
  readonly code = "claims_update_unavailable";
  readonly retryable = true;
  constructor(
    readonly account: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`nats claims update for account ${account}: ${reason}`, options);
  }
}

/**
 * A JWT for a revoked user key was requested, but this host's clock is still at or
 * before the revocation time, so the new JWT would be revoked too. Fix the clock
 * (NTP) or retry after `revokedAt`.
 */
export class ClockBehindRevocationError extends NatsLayerError {
  override readonly name = "ClockBehindRevocationError";
  readonly code = "clock_behind_revocation";
  readonly retryable = true;
  constructor(
    readonly userPublicKey: string,
    readonly revokedAt: Date,
  ) {
    super(
      `user ${userPublicKey} was revoked at ${revokedAt.toISOString()}, which is not yet past on this host's clock; ` +
        `a JWT issued now would be refused too: check the clock (NTP) or retry after that time`,
    );
  }
}

/** The nats-server found is older than 2.11 (Debian 12 ships 2.9.10). Not retryable. */
export class NatsServerVersionError extends NatsLayerError {
  override readonly name = "NatsServerVersionError";
  readonly code = "nats_server_too_old";
  readonly retryable = false;
  constructor(
    readonly binary: string,
    readonly version: string,
  ) {
    super(
      `${binary} is ${JSON.stringify(version)}; Weft needs nats-server 2.11 or newer (batched direct gets): run scripts/setup.sh, ` +
        `which installs 2.15 into .tools/bin, or set WEFT_NATS_SERVER to a newer binary`,
    );
  }
}
