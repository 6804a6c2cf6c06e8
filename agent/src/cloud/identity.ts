/**
 * Instance identity from the cloud's metadata service: which instance this agent runs on, read
 * at enrollment and presented to the controller (EnrollRequest.instance). One reader per cloud,
 * each speaking its metadata service's own protocol (IMDSv2 token + identity document on AWS,
 * `Metadata: true` on Azure, `Metadata-Flavor: Google` on GCP).
 */
import type { InstanceIdentityClaim } from "@weft/protocol";

export interface MetadataOptions {
  /** Base URL of the metadata service (default the cloud's link-local one; the lab points it at its simulator). */
  endpoint?: string;
  timeoutMs?: number;
}

export type MetadataReader = (options: MetadataOptions) => Promise<InstanceIdentityClaim>;
