/**
 * The GCE instance identity token from the metadata server (`Metadata-Flavor: Google`):
 * `instance/service-accounts/default/identity?audience=<the controller's>&format=full`, an RS256 JWT
 * Google signs, naming this instance, its project and zone → the attestation the agent presents at
 * enrollment.
 */
import type { GcpAttestation } from "@weft/protocol";
import { AgentError } from "../errors.js";
import type { MetadataOptions, MetadataReader } from "./identity.js";

export const GCP_METADATA_ENDPOINT = "http://metadata.google.internal";

/** The metadata server could not be asked or refused to answer; retryable when it may come back. */
export class GcpMetadataError extends AgentError {}

async function get(base: string, path: string, timeoutMs: number): Promise<string> {
  const url = `${base.replace(/\/+$/, "")}/computeMetadata/v1/${path}`;
  const what = path.split("?")[0];
  let res: Response;
  try {
    res = await fetch(url, { headers: { "Metadata-Flavor": "Google" }, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
  } catch (err) {
    throw new GcpMetadataError(`gcp metadata ${what}: ${(err as Error).message}`, { cause: err, retryable: true });
  }
  const body = (await res.text()).trim();
  if (!res.ok) throw new GcpMetadataError(`gcp metadata ${what}: HTTP ${res.status}: ${body.slice(0, 200)}`, { retryable: res.status >= 500 || res.status === 429 });
  // The real server marks its answers; anything else is not the metadata server.
  if (res.headers.get("metadata-flavor") !== "Google") throw new GcpMetadataError(`gcp metadata ${what}: the answer lacks Metadata-Flavor: Google`, { retryable: false });
  if (!body) throw new GcpMetadataError(`gcp metadata ${what}: empty answer`, { retryable: false });
  return body;
}

export const readGcpIdentity: MetadataReader = async (options: MetadataOptions): Promise<GcpAttestation> => {
  const base = options.endpoint ?? GCP_METADATA_ENDPOINT;
  if (!options.audience) throw new GcpMetadataError("gcp metadata: an identity token needs an audience (the controller's)", { retryable: false });
  const query = new URLSearchParams({ audience: options.audience, format: "full" });
  const token = await get(base, `instance/service-accounts/default/identity?${query.toString()}`, options.timeoutMs ?? 2000);
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) throw new GcpMetadataError("gcp metadata instance/service-accounts/default/identity: not a JWT", { retryable: false });
  return { provider: "gcp", token };
};
