/**
 * The AWS metadata reader: an IMDSv2 session token (`PUT /latest/api/token`), then the instance
 * identity document (`GET /latest/dynamic/instance-identity/document`) → the instance identity
 * claim the agent presents at enrollment. IMDSv1 (tokenless GETs) is never used.
 */
import { InstanceIdentityClaim } from "@weft/protocol";
import { AgentError } from "../errors.js";
import type { MetadataOptions, MetadataReader } from "./identity.js";

export const AWS_METADATA_ENDPOINT = "http://169.254.169.254";
const DEFAULT_TIMEOUT_MS = 2_000;
/** The token only has to outlive the next request. */
const TOKEN_TTL_SECONDS = 60;

/**
 * The metadata service could not be read or answered something unusable. `retryable` is true for
 * timeouts, connection failures and 5xx (IMDS briefly unavailable); false for a refusal (4xx) or
 * a document without the fields the claim needs (not on EC2, or IMDS disabled).
 */
export class AwsMetadataError extends AgentError {
  /** The metadata service's HTTP status, when it answered. */
  readonly status: number | undefined;
  constructor(
    message: string,
    options: { retryable: boolean; cause?: unknown; status?: number },
  ) {
    super(`aws metadata: ${message}`, { retryable: options.retryable, cause: options.cause });
    this.status = options.status;
  }
}

async function call(url: string, init: RequestInit, what: string, timeoutMs: number): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
  } catch (err) {
    const timedOut = (err as Error)?.name === "TimeoutError";
    throw new AwsMetadataError(`${what}: ${timedOut ? `no answer within ${timeoutMs} ms` : `cannot reach ${new URL(url).origin}`} (not on EC2, or the metadata service is unreachable)`, { retryable: true, cause: err });
  }
  const body = await res.text().catch(() => "");
  if (!res.ok) {
    const hint = res.status === 401 ? " (token refused)" : res.status === 403 ? " (IMDS refused the request: disabled, or a proxy in the path)" : res.status === 404 ? " (this address is not an EC2 instance's)" : "";
    throw new AwsMetadataError(`${what}: HTTP ${res.status}${hint}`, { retryable: res.status >= 500 || res.status === 429, status: res.status });
  }
  return body;
}

export const readAwsIdentity: MetadataReader = async (options: MetadataOptions = {}) => {
  const base = (options.endpoint ?? AWS_METADATA_ENDPOINT).replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const token = await call(`${base}/latest/api/token`, { method: "PUT", headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(TOKEN_TTL_SECONDS) } }, "PUT /latest/api/token", timeoutMs);
  if (!token.trim()) throw new AwsMetadataError("PUT /latest/api/token: empty token", { retryable: true });
  const what = "GET /latest/dynamic/instance-identity/document";
  const raw = await call(`${base}/latest/dynamic/instance-identity/document`, { headers: { "x-aws-ec2-metadata-token": token.trim() } }, what, timeoutMs);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(raw) as Record<string, unknown>;
  } catch (err) {
    throw new AwsMetadataError(`${what}: not JSON`, { retryable: false, cause: err });
  }
  const str = (k: string) => (typeof doc[k] === "string" && doc[k] !== "" ? (doc[k] as string) : undefined);
  const id = str("instanceId");
  if (!id) throw new AwsMetadataError(`${what}: no instanceId in the document`, { retryable: false });
  const claim = {
    provider: "aws" as const,
    id,
    ...(str("accountId") ? { account: str("accountId") } : {}),
    ...(str("region") ? { region: str("region") } : {}),
    ...(str("availabilityZone") ? { zone: str("availabilityZone") } : {}),
  };
  const parsed = InstanceIdentityClaim.safeParse(claim);
  if (!parsed.success) throw new AwsMetadataError(`${what}: unusable document: ${parsed.error.message}`, { retryable: false, cause: parsed.error });
  return parsed.data;
};
