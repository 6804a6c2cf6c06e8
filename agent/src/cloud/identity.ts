/**
 * Signed instance identity from the cloud's metadata service: the document the cloud signs for
 * this instance, read at enrollment and forwarded untouched to the controller
 * (EnrollRequest.attestation), which verifies it. One reader per cloud, each speaking its metadata
 * service's own protocol (IMDSv2 token + identity document + RSA-2048 PKCS#7 on AWS, the attested
 * document with a controller-issued nonce and `Metadata: true` on Azure, the identity token for the
 * controller's audience with `Metadata-Flavor: Google` on GCP). The agent verifies nothing itself:
 * it is the instance, and only the controller's verdict counts.
 */
import type { InstanceAttestation } from "@weft/protocol";

export interface MetadataOptions {
  /** Base URL of the metadata service (default the cloud's link-local one; the lab points it at its simulator). */
  endpoint?: string;
  timeoutMs?: number;
  /** Azure: the nonce the controller issued for this enrollment (`POST /v1/enroll/nonce`). */
  nonce?: string;
  /** GCP: the audience the identity token is for (the controller's). */
  audience?: string;
}

export type MetadataReader = (options: MetadataOptions) => Promise<InstanceAttestation>;
