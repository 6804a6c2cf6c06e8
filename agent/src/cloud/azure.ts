/**
 * The Azure metadata reader: `GET /metadata/instance?api-version=2021-02-01` with the header
 * `Metadata: true` from the Instance Metadata Service → the instance identity claim the agent
 * presents at enrollment (the VM's vmId, subscription, location and zone).
 */
import { InstanceIdentityClaim } from "@weft/protocol";
import { AgentError } from "../errors.js";
import type { MetadataOptions, MetadataReader } from "./identity.js";

export const AZURE_METADATA_ENDPOINT = "http://169.254.169.254";
export const AZURE_IMDS_API_VERSION = "2021-02-01";
const DEFAULT_TIMEOUT_MS = 2_000;

/**
 * The metadata service could not be read or answered something unusable. `retryable` is true for
 * timeouts, connection failures, 429 and 5xx (IMDS throttles and restarts); false for a refusal
 * (4xx) or a document without a vmId (not on Azure).
 */
export class AzureMetadataError extends AgentError {
  /** The metadata service's HTTP status, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, options: { retryable: boolean; cause?: unknown; status?: number }) {
    super(`azure metadata: ${message}`, { retryable: options.retryable, cause: options.cause });
    this.status = options.status;
  }
}

export const readAzureIdentity: MetadataReader = async (options: MetadataOptions = {}) => {
  const base = (options.endpoint ?? AZURE_METADATA_ENDPOINT).replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const what = "GET /metadata/instance";
  let res: Response;
  try {
    // IMDS must be reached directly; fetch uses no proxy, and redirects are refused.
    res = await fetch(`${base}/metadata/instance?api-version=${AZURE_IMDS_API_VERSION}`, { headers: { Metadata: "true" }, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
  } catch (err) {
    const timedOut = (err as Error)?.name === "TimeoutError";
    throw new AzureMetadataError(`${what}: ${timedOut ? `no answer within ${timeoutMs} ms` : `cannot reach ${new URL(base).origin}`} (not on Azure, or the metadata service is unreachable)`, { retryable: true, cause: err });
  }
  const raw = await res.text().catch(() => "");
  if (!res.ok) {
    const hint = res.status === 400 ? ` (${errorText(raw) ?? "request refused"})` : res.status === 404 ? " (this address is not an Azure VM's)" : "";
    throw new AzureMetadataError(`${what}: HTTP ${res.status}${hint}`, { retryable: res.status >= 500 || res.status === 429, status: res.status });
  }
  let compute: Record<string, unknown>;
  try {
    const doc = JSON.parse(raw) as { compute?: unknown };
    compute = typeof doc.compute === "object" && doc.compute !== null ? (doc.compute as Record<string, unknown>) : {};
  } catch (err) {
    throw new AzureMetadataError(`${what}: not JSON`, { retryable: false, cause: err });
  }
  const str = (k: string) => (typeof compute[k] === "string" && compute[k] !== "" ? (compute[k] as string) : undefined);
  const id = str("vmId");
  if (!id) throw new AzureMetadataError(`${what}: no compute.vmId in the document`, { retryable: false });
  const claim = {
    provider: "azure" as const,
    id,
    ...(str("subscriptionId") ? { account: str("subscriptionId") } : {}),
    ...(str("location") ? { region: str("location") } : {}),
    // IMDS sends "" for a VM outside any availability zone.
    ...(str("zone") ? { zone: str("zone") } : {}),
  };
  const parsed = InstanceIdentityClaim.safeParse(claim);
  if (!parsed.success) throw new AzureMetadataError(`${what}: unusable document: ${parsed.error.message}`, { retryable: false, cause: parsed.error });
  return parsed.data;
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
