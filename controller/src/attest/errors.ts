/**
 * Why a signed instance document was refused. Refusals keep the enrollment's 403
 * `instance_rejected` shape (the REST layer maps InstanceRejectedError); `reason` is the stable code
 * tests, logs and counters use, and the message says what was wrong and what to do.
 */
import { ControllerError, InstanceRejectedError } from "../errors.js";

export type AttestationRejection =
  /** Not a parseable PKCS#7 / JWT, or its content lacks what the cloud always puts there. */
  | "malformed"
  /** The signature does not verify over the content (tampered, or another key signed it). */
  | "bad_signature"
  /** The signer does not chain to a configured root, or is not the cloud's signing identity. */
  | "untrusted_signer"
  /** No certificate is configured for the region the AWS document names. */
  | "unknown_region"
  /** Past its expiry (Azure timeStamp.expiresOn, JWT exp). */
  | "expired"
  /** Issued in the future beyond the allowed clock skew. */
  | "not_yet_valid"
  /** A GCP token for another audience than this controller's. */
  | "wrong_audience"
  /** A GCP token from another issuer than Google. */
  | "wrong_issuer"
  /** An Azure document whose nonce this controller never issued, or whose nonce expired. */
  | "unknown_nonce"
  /** The document was already used for an enrollment (nonce consumed, AWS launch or GCP token already enrolled). */
  | "replayed"
  /** This controller is not set up to verify this cloud's documents (e.g. no GCP audience). */
  | "not_configured";

export class AttestationRejectedError extends InstanceRejectedError {
  constructor(
    override readonly reason: AttestationRejection,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, { ...options, details: [{ path: "attestation", message: reason }], reason });
  }
}

/**
 * The controller could not get the keys to verify with (the configured JWKS URL did not answer):
 * not the agent's fault, retryable.
 */
export class TrustUnavailableError extends ControllerError {
  readonly status = 503;
  readonly code = "trust_unavailable";
  readonly retryable = true;
}
