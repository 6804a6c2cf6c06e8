/**
 * The signed instance identity an agent presents at enrollment (`cloud` in its config): read from
 * the cloud's metadata service by that cloud's reader (agent/src/cloud/<provider>.ts). Azure's
 * document carries a nonce the controller issues for this enrollment, asked for first; GCP's token
 * is for the controller's audience. A metadata service that does not answer (yet: early in boot) or
 * fails is retryable; one that refuses (not on that cloud, metadata disabled) or answers something
 * unusable is final, as the reader says.
 */
import type { InstanceAttestation } from "@weft/protocol";
import { readAwsIdentity } from "../cloud/aws.js";
import { readAzureIdentity } from "../cloud/azure.js";
import { readGcpIdentity } from "../cloud/gcp.js";
import type { MetadataReader } from "../cloud/identity.js";
import type { AgentConfig } from "../config.js";
import { AgentError } from "../errors.js";

export type CloudConfig = NonNullable<AgentConfig["cloud"]>;
export type MetadataReaders = Partial<Record<CloudConfig["provider"], MetadataReader>>;

/** The readers this build has, by provider. */
export const METADATA_READERS: MetadataReaders = { aws: readAwsIdentity, azure: readAzureIdentity, gcp: readGcpIdentity };

/** The instance identity could not be read; `retryable` as the cloud's reader decided (true when it is unknown). */
export class InstanceMetadataError extends AgentError {
  constructor(message: string, cause: unknown, retryable: boolean) {
    super(message, { cause, retryable });
  }
}

export interface AttestationInputs {
  /** The controller's URL: its origin is the GCP audience unless `cloud.audience` says otherwise. */
  controllerUrl: string;
  /** Asks the controller for an enrollment nonce (Azure); its errors pass through unchanged. */
  nonce: () => Promise<string>;
}

/** The audience a GCP identity token is requested for: `cloud.audience`, else the controller URL's origin. */
export function attestationAudience(cloud: CloudConfig, controllerUrl: string): string {
  return cloud.audience ?? new URL(controllerUrl).origin;
}

/** Reads this host's signed instance identity from `cloud`'s metadata service. */
export async function readInstanceAttestation(cloud: CloudConfig, inputs: AttestationInputs, readers: MetadataReaders = METADATA_READERS): Promise<InstanceAttestation> {
  const reader = readers[cloud.provider];
  const where = `the ${cloud.provider} metadata service${cloud.metadataEndpoint === undefined ? "" : ` at ${cloud.metadataEndpoint}`}`;
  if (!reader) throw new AgentError(`cloud.provider ${cloud.provider}: this build has no instance metadata reader for it`);
  const nonce = cloud.provider === "azure" ? await inputs.nonce() : undefined;
  let attestation: InstanceAttestation;
  try {
    attestation = await reader({
      ...(cloud.metadataEndpoint === undefined ? {} : { endpoint: cloud.metadataEndpoint }),
      ...(nonce === undefined ? {} : { nonce }),
      ...(cloud.provider === "gcp" ? { audience: attestationAudience(cloud, inputs.controllerUrl) } : {}),
    });
  } catch (err) {
    const retryable = err instanceof AgentError ? err.retryable : true;
    throw new InstanceMetadataError(`enroll: cannot read the instance identity from ${where}: ${err instanceof Error ? err.message : String(err)}`, err, retryable);
  }
  if (attestation.provider !== cloud.provider) {
    throw new AgentError(`enroll: ${where} answered with a ${attestation.provider} identity; check cloud.provider`);
  }
  return attestation;
}
