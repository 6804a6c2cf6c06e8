/**
 * Signed instance identity: what an agent presents at enrollment to prove which cloud instance it
 * runs on (EnrollRequest.attestation). Each cloud signs its own document; the agent forwards it
 * untouched and the controller verifies it (controller/src/attest) before it believes any of it:
 *
 * - aws: the IMDSv2 instance identity document and its RSA-2048 PKCS#7 signature
 *   (`/latest/dynamic/instance-identity/document` and `…/rsa2048`), SHA-256, verified against
 *   AWS's published per-region certificates; one use per instance launch (`pendingTime`).
 * - azure: the attested data document (`/metadata/attested/document?nonce=…`), a PKCS#7
 *   SignedData whose content carries a nonce the controller issued for this enrollment
 *   (`POST /v1/enroll/nonce`, single use, short-lived), chained to Microsoft's roots.
 * - gcp: the instance identity token (`…/service-accounts/default/identity?audience=…&format=full`),
 *   an RS256 JWT from Google whose `aud` is this controller; one use.
 *
 * Sizes are bounded here so a stranger cannot make the controller parse megabytes.
 */
import { z } from "zod";

/** Standard base64, line breaks allowed (IMDS wraps the PKCS#7 at 64 characters). */
const base64 = (max: number) =>
  z
    .string()
    .min(16)
    .max(max)
    .regex(/^[A-Za-z0-9+/=\r\n]+$/, "must be base64");

export const AwsAttestation = z
  .object({
    provider: z.literal("aws"),
    /** The instance identity document exactly as IMDS served it (JSON text). */
    document: z.string().min(2).max(4096),
    /** `/latest/dynamic/instance-identity/rsa2048`: base64 of a PKCS#7 SignedData over the document. */
    signature: base64(16_384),
  })
  .strict();
export type AwsAttestation = z.infer<typeof AwsAttestation>;

export const AzureAttestation = z
  .object({
    provider: z.literal("azure"),
    /** `signature` of `/metadata/attested/document`: base64 of a PKCS#7 SignedData whose content is the attested JSON. */
    signature: base64(32_768),
  })
  .strict();
export type AzureAttestation = z.infer<typeof AzureAttestation>;

export const GcpAttestation = z
  .object({
    provider: z.literal("gcp"),
    /** The identity token (compact JWS) from the metadata server, `format=full`. */
    token: z
      .string()
      .max(16_384)
      .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, "must be a compact JWT (three base64url parts)"),
  })
  .strict();
export type GcpAttestation = z.infer<typeof GcpAttestation>;

export const InstanceAttestation = z.discriminatedUnion("provider", [AwsAttestation, AzureAttestation, GcpAttestation]);
export type InstanceAttestation = z.infer<typeof InstanceAttestation>;
export type AttestationProvider = InstanceAttestation["provider"];

/**
 * An enrollment nonce (`POST /v1/enroll/nonce`, unauthenticated): an Azure agent asks its metadata
 * service to sign it into the attested document. Ten decimal digits, the form Azure documents for
 * the `nonce` parameter; single use, valid until `expiresAt`.
 */
export const ENROLL_NONCE_PATTERN = /^[0-9]{10}$/;
export const EnrollNonce = z.object({
  nonce: z.string().regex(ENROLL_NONCE_PATTERN, "must be 10 decimal digits"),
  expiresAt: z.string(),
});
export type EnrollNonce = z.infer<typeof EnrollNonce>;
