/**
 * The Azure metadata reader: the attested data document
 * (`GET /metadata/attested/document?api-version=2021-02-01&nonce=<nonce>`, header `Metadata: true`)
 * from the Instance Metadata Service, with the nonce the controller issued for this enrollment
 * signed into it → the attestation the agent presents at enrollment (the PKCS#7, as IMDS gave it).
 */
import type { AzureAttestation } from "@weft/protocol";
import { AgentError } from "../errors.js";
import type { MetadataOptions, MetadataReader } from "./identity.js";

export const AZURE_METADATA_ENDPOINT = "http://169.254.169.254";
export const AZURE_IMDS_API_VERSION = "2021-02-01";
const DEFAULT_TIMEOUT_MS = 2_000;

/**
 * The metadata service could not be read or answered something unusable. `retryable` is true for
 * timeouts, connection failures, 429 and 5xx (IMDS throttles and restarts); false for a refusal
 * (4xx) or an answer that is not an attested document (not on Azure).
 */
export class AzureMetadataError extends AgentError {
  /** The metadata service's HTTP status, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, options: { retryable: boolean; cause?: unknown; status?: number }) {
    super(`azure metadata: ${message}`, { retryable: options.retryable, cause: options.cause });
    this.status = options.status;
  }
}

export const readAzureIdentity: MetadataReader = async (options: MetadataOptions = {}): Promise<AzureAttestation> => {
  const base = (options.endpoint ?? AZURE_METADATA_ENDPOINT).replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (options.nonce === undefined) throw new AzureMetadataError("an attested document needs the controller's enrollment nonce", { retryable: false });
  const what = "GET /metadata/attested/document";
  let res: Response;
  try {
    // IMDS must be reached directly; fetch uses no proxy, and redirects are refused.
    const query = new URLSearchParams({ "api-version": AZURE_IMDS_API_VERSION, nonce: options.nonce });
    res = await fetch(`${base}/metadata/attested/document?${query.toString()}`, { headers: { Metadata: "true" }, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
  } catch (err) {
    const timedOut = (err as Error)?.name === "TimeoutError";
    throw new AzureMetadataError(`${what}: ${timedOut ? `no answer within ${timeoutMs} ms` : `cannot reach ${new URL(base).origin}`} (not on Azure, or the metadata service is unreachable)`, { retryable: true, cause: err });
  }
  const raw = await res.text().catch(() => "");
  if (!res.ok) {
    const hint = res.status === 400 ? ` (${errorText(raw) ?? "request refused"})` : res.status === 404 ? " (this address is not an Azure VM's)" : "";
    throw new AzureMetadataError(`${what}: HTTP ${res.status}${hint}`, { retryable: res.status >= 500 || res.status === 429, status: res.status });
  }
  let doc: { encoding?: unknown; signature?: unknown };
  try {
    doc = JSON.parse(raw) as typeof doc;
  } catch (err) {
    throw new AzureMetadataError(`${what}: not JSON`, { retryable: false, cause: err });
  }
  if (doc.encoding !== "pkcs7" || typeof doc.signature !== "string" || doc.signature.length < 16) {
    throw new AzureMetadataError(`${what}: not an attested document (encoding ${JSON.stringify(doc.encoding)}, want "pkcs7" with a signature)`, { retryable: false });
  }
  return { provider: "azure", signature: doc.signature };
};

/** IMDS errors are `{"error": "Bad request. …"}`. */
function errorText(raw: string): string | undefined {
  try {
    const e = (JSON.parse(raw) as { error?: unknown }).error;
    return typeof e === "string" ? e : undefined;
  } catch {
    return undefined;
  }
}
