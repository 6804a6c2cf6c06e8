/**
 * EC2 SDK errors → typed inventory errors. Throttling, 5xx and network failures are transient
 * (retried by withRetry); refused credentials or permissions are auth errors (never retried);
 * anything else is a plain, non-retryable InventoryError that fails only its region. EC2 sends no
 * Retry-After, so none is read.
 */
import { InventoryAuthError, InventoryError, InventoryTransientError } from "../errors.js";

/** EC2's throttling codes (RequestLimitExceeded is the one EC2 uses; the rest are AWS-wide). */
const THROTTLING = new Set(["RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled", "RequestThrottledException", "TooManyRequestsException"]);
/** Server-side codes that a later attempt can get past. */
const SERVER = new Set(["InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"]);
/** Credentials refused, or not allowed to call the action. */
const AUTH = new Set([
  "AuthFailure",
  "UnauthorizedOperation",
  "InvalidClientTokenId",
  "UnrecognizedClientException",
  "SignatureDoesNotMatch",
  "IncompleteSignature",
  "MissingAuthenticationToken",
  "ExpiredToken",
  "ExpiredTokenException",
  "AccessDenied",
  "AccessDeniedException",
  "Blocked",
]);
/** Node socket errors and the SDK's timeout. */
const NETWORK = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOTFOUND", "ECONNABORTED", "UND_ERR_SOCKET"]);

interface SdkErrorLike {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

/** `op` names the call for the message: `ec2 DescribeInstances (eu-west-1)`. */
export function classifyEc2Error(err: unknown, op: string): unknown {
  if (err instanceof InventoryError) return err;
  if (typeof err !== "object" || err === null) return new InventoryError(`${op}: ${String(err)}`, { code: "unknown", retryable: false, cause: err });
  const e = err as SdkErrorLike;
  if (e.name === "AbortError") return err;
  const code = e.Code ?? (e.$metadata?.httpStatusCode !== undefined ? e.name : undefined) ?? e.code ?? e.name ?? "unknown";
  const status = e.$metadata?.httpStatusCode;
  const requestId = e.$metadata?.requestId ? ` [request ${e.$metadata.requestId}]` : "";
  const message = `${op}: ${code}: ${e.message ?? ""}${requestId}`;
  if (THROTTLING.has(code) || status === 429) return new InventoryTransientError(message, { code: "throttled", cause: err });
  if (AUTH.has(code) || status === 401 || status === 403) return new InventoryAuthError(message, err);
  if (SERVER.has(code) || (status !== undefined && status >= 500)) return new InventoryTransientError(message, { code: "server_error", cause: err });
  if (status === undefined && (NETWORK.has(e.code ?? "") || e.name === "TimeoutError" || e.name === "RequestTimeout" || NETWORK.has(e.name ?? ""))) {
    return new InventoryTransientError(message, { code: "network", cause: err });
  }
  return new InventoryError(message, { code, retryable: false, cause: err });
}
