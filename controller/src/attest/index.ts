/**
 * Signed instance identity: an agent proves which cloud instance it runs on with the document its
 * cloud signs (AWS instance identity document + RSA-2048 PKCS#7, Azure attested data with a
 * controller-issued nonce, GCP identity token), verified here against AWS's, Microsoft's and
 * Google's keys (or a lab's test roots) before enrollment believes any of it, and used once.
 * controller/README.md, "Join by instance identity", states what each cloud's check proves.
 */
export { InstanceAttestor, openInstanceAttestor, type InstanceAttestorOptions } from "./attestor.js";
export { AttestationRejectedError, TrustUnavailableError, type AttestationRejection } from "./errors.js";
export { InstanceIdentityConfig, SourceAddressRule, type InstanceIdentityConfigInput } from "./config.js";
export { EnrollNonces, NonceRecord } from "./nonces.js";
export { AttestationMarks, AttestationMark } from "./marks.js";
export { loadTrust, TrustConfigError, SHIPPED_TRUST_DIR, type TrustMaterial } from "./trust.js";
export type { AttestedInstance, ReplayGuard } from "./types.js";
