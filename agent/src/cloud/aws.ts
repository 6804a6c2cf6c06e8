/**
 * The AWS metadata reader: an IMDSv2 session token (`PUT /latest/api/token`), then the instance
 * identity document (`GET /latest/dynamic/instance-identity/document`) and its RSA-2048 PKCS#7
 * signature (`GET /latest/dynamic/instance-identity/rsa2048`, SHA-256) → the attestation the agent
 * presents at enrollment. IMDSv1 (tokenless GETs) is never used.
 */
import type { AwsAttestation } from "@weft/protocol";
import { AgentError } from "../errors.js";
import type { MetadataOptions, MetadataReader } from "./identity.js";

export const AWS_METADATA_ENDPOINT = "http://169.254.169.254";
const DEFAULT_TIMEOUT_MS = 2_000;
/** The token only has to outlive the next requests. */
const TOKEN_TTL_SECONDS = 60;

/**
 * The metadata service could not be read or answered something unusable. `retryable` is true for
 * timeouts, connection failures and 5xx (IMDS briefly unavailable); false for a refusal (4xx) or
 * a document without the fields the controller needs (not on EC2, or IMDS disabled).
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

export const readAwsIdentity: MetadataReader = async (options: MetadataOptions = {}): Promise<AwsAttestation> => {
  const base = (options.endpoint ?? AWS_METADATA_ENDPOINT).replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const token = (await call(`${base}/latest/api/token`, { method: "PUT", headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(TOKEN_TTL_SECONDS) } }, "PUT /latest/api/token", timeoutMs)).trim();
  if (!token) throw new AwsMetadataError("PUT /latest/api/token: empty token", { retryable: true });
  const headers = { "x-aws-ec2-metadata-token": token };
  const what = "GET /latest/dynamic/instance-identity/document";
  const document = await call(`${base}/latest/dynamic/instance-identity/document`, { headers }, what, timeoutMs);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(document) as Record<string, unknown>;
  } catch (err) {
    throw new AwsMetadataError(`${what}: not JSON`, { retryable: false, cause: err });
  }
  if (typeof doc.instanceId !== "string" || doc.instanceId === "") throw new AwsMetadataError(`${what}: no instanceId in the document`, { retryable: false });
  const signature = (await call(`${base}/latest/dynamic/instance-identity/rsa2048`, { headers }, "GET /latest/dynamic/instance-identity/rsa2048", timeoutMs)).trim();
  if (!/^[A-Za-z0-9+/=\r\n]{16,}$/.test(signature)) throw new AwsMetadataError("GET /latest/dynamic/instance-identity/rsa2048: not a base64 PKCS#7", { retryable: false });
  return { provider: "aws", document, signature };
};
