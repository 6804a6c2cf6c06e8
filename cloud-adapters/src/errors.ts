/** Typed inventory errors: what failed, whether retrying can help. */

export class InventoryError extends Error {
  readonly retryable: boolean;
  readonly code: string;
  constructor(message: string, options: { code: string; retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.retryable = options.retryable;
  }
}

/** The cloud refused the credentials (401/403, AuthFailure, invalid_grant): fix the credentials; never retried. */
export class InventoryAuthError extends InventoryError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: "auth", retryable: false, cause });
  }
}

/** Throttled (RequestLimitExceeded, 429, rateLimitExceeded) or a 5xx: retried with backoff. */
export class InventoryTransientError extends InventoryError {
  /** Server's Retry-After, when it gave one. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { code: string; retryAfterMs?: number; cause?: unknown }) {
    super(message, { code: options.code, retryable: true, cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** A static inventory file that does not parse or validate; names the field. */
export class InventoryFileError extends InventoryError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: "invalid_file", retryable: false, cause });
  }
}
