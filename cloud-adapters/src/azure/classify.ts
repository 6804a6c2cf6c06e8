/**
 * What an Azure SDK failure means for the inventory: the credential chain or ARM refused us
 * (InventoryAuthError, never retried), ARM throttled or failed (429, 5xx, 408) or the network
 * did (InventoryTransientError, retried by withRetry, honouring Retry-After), or anything else
 * (a plain InventoryError that fails the resource type and is reported as an issue).
 */
import { InventoryAuthError, InventoryError, InventoryTransientError } from "../errors.js";

/** @azure/identity's "fix your credentials" errors, matched by name so no class identity is needed. */
const CREDENTIAL_ERRORS = new Set(["CredentialUnavailableError", "AuthenticationRequiredError", "AuthenticationError", "AggregateAuthenticationError"]);
/** Failures before any HTTP status: the request never completed. */
const NETWORK_CODES = new Set(["REQUEST_SEND_ERROR", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EAI_AGAIN", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_SOCKET"]);

interface RestErrorLike {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  response?: { headers?: { get(name: string): string | undefined } };
}

/** Classifies one failed SDK call; `operation` prefixes the message (`azure virtualMachines.listAll: …`). */
export function classifyAzureError(err: unknown, operation: string): unknown {
  if (err instanceof InventoryError) return err;
  if (typeof err !== "object" || err === null) return new InventoryError(`azure ${operation}: ${String(err)}`, { code: "unknown", retryable: false, cause: err });
  const e = err as RestErrorLike;
  if (e.name === "AbortError") return err;
  const label = [e.statusCode, e.code].filter((x) => x !== undefined && x !== "").join(" ");
  const what = `azure ${operation}: ${label ? `${label}: ` : ""}${e.message ?? ""}`;
  if (e.name && CREDENTIAL_ERRORS.has(e.name)) return new InventoryAuthError(what, err);
  const status = e.statusCode;
  if (status === 401 || status === 403) return new InventoryAuthError(what, err);
  if (status === 429 || status === 408 || (status !== undefined && status >= 500)) {
    const retryAfterMs = retryAfter(e);
    return new InventoryTransientError(what, { code: status === 429 ? "throttled" : `http_${status}`, cause: err, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
  }
  if (status === undefined && e.code && NETWORK_CODES.has(e.code)) return new InventoryTransientError(what, { code: "network", cause: err });
  return new InventoryError(what, { code: status ? `http_${status}` : (e.code ?? "unknown"), retryable: false, cause: err });
}

/** Retry-After in ms: ARM's retry-after-ms / x-ms-retry-after-ms, else Retry-After (seconds or an HTTP date). */
function retryAfter(e: RestErrorLike): number | undefined {
  const h = e.response?.headers;
  if (!h) return undefined;
  for (const name of ["retry-after-ms", "x-ms-retry-after-ms"]) {
    const ms = Number(h.get(name));
    if (h.get(name) !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  }
  const v = h.get("retry-after");
  if (v === undefined || v.trim() === "") return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
