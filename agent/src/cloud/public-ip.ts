/**
 * The instance's current public IPv4 address from its cloud's metadata service, so the agent
 * notices when it changes (a VM stopped and started gets a new one): AWS IMDSv2
 * `meta-data/public-ipv4`, Azure IMDS `instance/network` (the first interface's first public
 * address), GCE `network-interfaces/0/access-configs/0/external-ip`. Undefined when the instance
 * has none (AWS and GCE answer 404 or an empty value; Azure an empty string). Throws
 * PublicIpError when the service cannot be read or answers something unusable.
 */
import { parseIpv4, type MetadataProvider } from "@weft/protocol";
import { AgentError } from "../errors.js";
import { AWS_METADATA_ENDPOINT } from "./aws.js";
import { AZURE_IMDS_API_VERSION, AZURE_METADATA_ENDPOINT } from "./azure.js";
import { GCP_METADATA_ENDPOINT } from "./gcp.js";
import type { MetadataOptions } from "./identity.js";

export class PublicIpError extends AgentError {
  constructor(message: string, cause?: unknown) {
    super(`public address from the metadata service: ${message}`, { retryable: true, cause });
  }
}

const DEFAULT_TIMEOUT_MS = 2_000;

async function get(url: string, init: RequestInit, timeoutMs: number): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    throw new PublicIpError(`${init.method ?? "GET"} ${url}: ${(err as Error)?.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : "unreachable"}`, err);
  }
}

function address(text: string | undefined, what: string): string | undefined {
  const t = (text ?? "").trim();
  if (t === "") return undefined;
  if (parseIpv4(t) === undefined) throw new PublicIpError(`${what}: not an IPv4 address: ${JSON.stringify(t.slice(0, 40))}`);
  return t;
}

export async function readPublicIp(provider: MetadataProvider, options: MetadataOptions = {}): Promise<string | undefined> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (provider === "aws") {
    const base = (options.endpoint ?? AWS_METADATA_ENDPOINT).replace(/\/+$/, "");
    const token = await get(`${base}/latest/api/token`, { method: "PUT", headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" } }, timeoutMs);
    if (token.status !== 200 || token.body.trim() === "") throw new PublicIpError(`PUT /latest/api/token: HTTP ${token.status}`);
    const got = await get(`${base}/latest/meta-data/public-ipv4`, { headers: { "x-aws-ec2-metadata-token": token.body.trim() } }, timeoutMs);
    if (got.status === 404) return undefined;
    if (got.status !== 200) throw new PublicIpError(`GET /latest/meta-data/public-ipv4: HTTP ${got.status}`);
    return address(got.body, "public-ipv4");
  }
  if (provider === "azure") {
    const base = (options.endpoint ?? AZURE_METADATA_ENDPOINT).replace(/\/+$/, "");
    const got = await get(`${base}/metadata/instance/network?api-version=${AZURE_IMDS_API_VERSION}`, { headers: { Metadata: "true" } }, timeoutMs);
    if (got.status !== 200) throw new PublicIpError(`GET /metadata/instance/network: HTTP ${got.status}`);
    let doc: { interface?: { ipv4?: { ipAddress?: { publicIpAddress?: unknown }[] } }[] };
    try {
      doc = JSON.parse(got.body) as typeof doc;
    } catch (err) {
      throw new PublicIpError("GET /metadata/instance/network: not JSON", err);
    }
    const pub = doc.interface?.[0]?.ipv4?.ipAddress?.[0]?.publicIpAddress;
    return address(typeof pub === "string" ? pub : undefined, "publicIpAddress");
  }
  const base = (options.endpoint ?? GCP_METADATA_ENDPOINT).replace(/\/+$/, "");
  const got = await get(`${base}/computeMetadata/v1/instance/network-interfaces/0/access-configs/0/external-ip`, { headers: { "Metadata-Flavor": "Google" } }, timeoutMs);
  if (got.status === 404) return undefined;
  if (got.status !== 200) throw new PublicIpError(`GET …/access-configs/0/external-ip: HTTP ${got.status}`);
  return address(got.body, "external-ip");
}
