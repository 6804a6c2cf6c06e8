/**
 * The GCE instance identity from the metadata server (`Metadata-Flavor: Google`): the numeric
 * instance id, the project id and the zone (`projects/<number>/zones/<zone>`), from which the
 * region follows.
 */
import type { InstanceIdentityClaim } from "@weft/protocol";
import { AgentError } from "../errors.js";
import type { MetadataOptions, MetadataReader } from "./identity.js";

export const GCP_METADATA_ENDPOINT = "http://metadata.google.internal";

/** The metadata server could not be asked or refused to answer; retryable when it may come back. */
export class GcpMetadataError extends AgentError {}

async function get(base: string, path: string, timeoutMs: number): Promise<string> {
  const url = `${base.replace(/\/+$/, "")}/computeMetadata/v1/${path}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { "Metadata-Flavor": "Google" }, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
  } catch (err) {
    throw new GcpMetadataError(`gcp metadata ${path}: ${(err as Error).message}`, { cause: err, retryable: true });
  }
  const body = (await res.text()).trim();
  if (!res.ok) throw new GcpMetadataError(`gcp metadata ${path}: HTTP ${res.status}: ${body.slice(0, 200)}`, { retryable: res.status >= 500 || res.status === 429 });
  // The real server marks its answers; anything else is not the metadata server.
  if (res.headers.get("metadata-flavor") !== "Google") throw new GcpMetadataError(`gcp metadata ${path}: the answer lacks Metadata-Flavor: Google`, { retryable: false });
  if (!body) throw new GcpMetadataError(`gcp metadata ${path}: empty answer`, { retryable: false });
  return body;
}

export const readGcpIdentity: MetadataReader = async (options: MetadataOptions): Promise<InstanceIdentityClaim> => {
  const base = options.endpoint ?? GCP_METADATA_ENDPOINT;
  const timeout = options.timeoutMs ?? 2000;
  const [id, zonePath, project] = await Promise.all([get(base, "instance/id", timeout), get(base, "instance/zone", timeout), get(base, "project/project-id", timeout)]);
  if (!/^\d+$/.test(id)) throw new GcpMetadataError(`gcp metadata instance/id: not a numeric id: ${id.slice(0, 40)}`);
  const zone = /^projects\/[^/]+\/zones\/([a-z0-9-]+)$/.exec(zonePath)?.[1];
  if (!zone) throw new GcpMetadataError(`gcp metadata instance/zone: not projects/<n>/zones/<zone>: ${zonePath.slice(0, 80)}`);
  return { provider: "gcp", id, account: project, region: zone.replace(/-[a-z]$/, ""), zone };
};
