/**
 * What a failed Compute Engine call means for the caller. The SDK's REST transport surfaces an
 * HTTP failure as a GaxiosError (`status`, the JSON error body as its message) and a transport
 * failure as one with a system `code` (ECONNREFUSED…); gax's own decoder yields a GoogleError
 * with a gRPC `code` and ErrorInfo `reason`. All of them are read here, structurally:
 *
 * - 429, 403 with reason rateLimitExceeded/userRateLimitExceeded, RESOURCE_EXHAUSTED → throttled
 * - 5xx, 408, UNAVAILABLE/INTERNAL/DEADLINE_EXCEEDED, connection failures → transient
 * - 401, any other 403, UNAUTHENTICATED/PERMISSION_DENIED, OAuth invalid_grant → auth
 * - anything else (404, 400, a bad response) → a non-retryable InventoryError
 */
import { InventoryAuthError, InventoryError, InventoryTransientError } from "../errors.js";

interface GceErrorBody {
  error?:
    | string
    | {
        code?: number;
        message?: string;
        status?: string;
        errors?: { reason?: string; message?: string }[];
        details?: { "@type"?: string; reason?: string }[];
      };
  error_description?: string;
}

const RATE_REASONS = new Set(["rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"]);
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EAI_AGAIN", "ENOTFOUND", "ENETUNREACH", "EHOSTUNREACH", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]);
/** gRPC status codes (google.rpc.Code) a GoogleError carries. */
const GRPC = { DEADLINE_EXCEEDED: 4, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;
const OAUTH_REFUSALS = new Set(["invalid_grant", "invalid_client", "unauthorized_client", "invalid_token"]);

type Raw = Error & {
  status?: unknown;
  code?: unknown;
  reason?: unknown;
  response?: { status?: unknown; headers?: unknown; data?: unknown };
  cause?: unknown;
};

/** The JSON error body: GaxiosError puts it in `message` when the response was a stream. */
function bodyOf(e: Raw): GceErrorBody | undefined {
  const candidates = [e.response?.data, e.message];
  for (const c of candidates) {
    if (c && typeof c === "object") return c as GceErrorBody;
    if (typeof c === "string" && c.trimStart().startsWith("{")) {
      try {
        return JSON.parse(c) as GceErrorBody;
      } catch {
        // not JSON after all
      }
    }
  }
  return undefined;
}

function retryAfterMs(e: Raw): number | undefined {
  const h = e.response?.headers;
  let v: unknown;
  if (h && typeof (h as Headers).get === "function") v = (h as Headers).get("retry-after");
  else if (h && typeof h === "object") v = (h as Record<string, unknown>)["retry-after"];
  const n = Number(v);
  return v !== null && v !== undefined && v !== "" && Number.isFinite(n) && n >= 0 ? n * 1000 : undefined;
}

function httpStatus(e: Raw): number | undefined {
  for (const s of [e.status, e.response?.status]) if (typeof s === "number" && s >= 100) return s;
  return typeof e.code === "number" && e.code >= 100 ? e.code : undefined;
}

function networkCode(e: Raw): string | undefined {
  for (let c: unknown = e, depth = 0; c && typeof c === "object" && depth < 4; c = (c as Raw).cause, depth++) {
    const code = (c as Raw).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
  }
  return undefined;
}

/** Turns whatever the SDK threw into an InventoryError saying what to do; `operation` prefixes the message. */
export function classifyGcpError(raw: unknown, operation: string): InventoryError {
  if (raw instanceof InventoryError) return raw;
  const e = (raw instanceof Error ? raw : new Error(String(raw))) as Raw;
  if (e.name === "AbortError") return new InventoryError(`${operation}: aborted`, { code: "aborted", retryable: false, cause: raw });
  const body = bodyOf(e);
  const detail = typeof body?.error === "object" ? body.error : undefined;
  const reasons = new Set<string>([...(detail?.errors ?? []).map((x) => x.reason ?? ""), ...(detail?.details ?? []).map((x) => x.reason ?? "")]);
  if (typeof e.reason === "string") reasons.add(e.reason);
  reasons.delete("");
  const message = detail?.message ?? (typeof body?.error === "string" ? `${body.error}${body.error_description ? `: ${body.error_description}` : ""}` : e.message);
  const status = httpStatus(e);
  const grpc = status === undefined && typeof e.code === "number" ? e.code : undefined;
  const what = (label: string) => `${operation}: ${label}${reasons.size ? ` (${[...reasons].join(", ")})` : ""}: ${message}`;
  const rateLimited = [...reasons].some((r) => RATE_REASONS.has(r));

  if (status === 429 || (status === 403 && rateLimited) || grpc === GRPC.RESOURCE_EXHAUSTED) {
    const after = retryAfterMs(e);
    return new InventoryTransientError(what(`throttled ${status ?? "RESOURCE_EXHAUSTED"}`), { code: "throttled", cause: raw, ...(after === undefined ? {} : { retryAfterMs: after }) });
  }
  if (typeof body?.error === "string" && OAUTH_REFUSALS.has(body.error)) return new InventoryAuthError(what("credentials refused"), raw);
  if (status === 401 || status === 403 || grpc === GRPC.UNAUTHENTICATED || grpc === GRPC.PERMISSION_DENIED) {
    return new InventoryAuthError(what(`credentials refused ${status ?? grpc}`), raw);
  }
  if ((status !== undefined && (status >= 500 || status === 408)) || grpc === GRPC.UNAVAILABLE || grpc === GRPC.INTERNAL || grpc === GRPC.DEADLINE_EXCEEDED) {
    return new InventoryTransientError(what(`server error ${status ?? grpc}`), { code: "server_error", cause: raw });
  }
  const net = networkCode(e);
  if (net) return new InventoryTransientError(`${operation}: network: ${net}: ${e.message}`, { code: "network", cause: raw });
  return new InventoryError(what(status === undefined ? "failed" : `failed ${status}`), { code: status === 404 ? "not_found" : "gcp_error", retryable: false, cause: raw });
}
