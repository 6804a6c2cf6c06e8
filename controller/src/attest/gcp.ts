/**
 * GCP: the instance identity token (`…/service-accounts/default/identity?audience=…&format=full`),
 * an RS256 JWT issued by Google (`iss` https://accounts.google.com) whose `google.compute_engine`
 * claims name the instance, project and zone. Verified with `jose` against Google's keys (a JWKS:
 * shipped copy, file or URL), `aud` equal to this controller's configured audience, `exp` and `iat`.
 *
 * What it proves: Google minted, within the last hour, a token for this audience on this instance
 * of this project and zone. The audience keeps a token minted for another service from being used
 * here; the attestor accepts each token once (ReplayGuard "token": only a later `iat` enrolls the
 * instance again). It names no address.
 */
import { errors, jwtVerify } from "jose";
import type { GcpAttestation } from "@weft/protocol";
import { z } from "zod";
import { AttestationRejectedError, TrustUnavailableError } from "./errors.js";
import type { GcpTrust } from "./trust.js";
import type { AttestedInstance } from "./types.js";

const WHAT = "gcp identity token";
export const GOOGLE_ISSUERS = ["https://accounts.google.com", "accounts.google.com"];
/** Clock skew allowed on exp / iat between Google and this controller. */
const CLOCK_TOLERANCE_SECONDS = 60;

export const ComputeEngineClaims = z.object({
  instance_id: z.string().regex(/^[0-9]{1,20}$/, "must be a numeric instance id"),
  project_id: z.string().min(1).max(64),
  zone: z.string().regex(/^[a-z]+-[a-z]+[0-9]+-[a-z]$/, "must be a zone like europe-west1-b"),
  instance_name: z.string().max(128).optional(),
});

export async function verifyGcpAttestation(att: GcpAttestation, trust: GcpTrust, now: Date): Promise<AttestedInstance> {
  if (trust.audience === undefined) {
    throw new AttestationRejectedError("not_configured", `${WHAT}: this controller has no GCP audience configured (inventory.instanceIdentity.gcp.audience), so it accepts no GCP identity token`);
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(att.token, trust.keys, {
      algorithms: ["RS256"],
      issuer: GOOGLE_ISSUERS,
      audience: trust.audience,
      currentDate: now,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ["iat", "exp"],
    }));
  } catch (err) {
    throw rejection(err, trust);
  }
  const ce = ComputeEngineClaims.safeParse((payload.google as { compute_engine?: unknown } | undefined)?.compute_engine);
  if (!ce.success) {
    throw new AttestationRejectedError("malformed", `${WHAT}: no usable google.compute_engine claims (${ce.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}); request the token with format=full`);
  }
  const iat = payload.iat as number;
  if (iat * 1000 > now.getTime() + CLOCK_TOLERANCE_SECONDS * 1000) {
    throw new AttestationRejectedError("not_yet_valid", `${WHAT}: issued at ${new Date(iat * 1000).toISOString()}, in the future; check this controller's clock`);
  }
  const { instance_id, project_id, zone } = ce.data;
  return {
    provider: "gcp",
    account: project_id,
    id: instance_id,
    zone,
    region: zone.replace(/-[a-z]$/, ""),
    privateIps: [],
    evidence: `GCP identity token (RS256, aud ${trust.audience}, iat ${new Date(iat * 1000).toISOString()})`,
    replay: { kind: "token", marker: iat * 1000, label: `token issued ${new Date(iat * 1000).toISOString()}` },
  };
}

function rejection(err: unknown, trust: GcpTrust): Error {
  if (err instanceof errors.JWTExpired) return new AttestationRejectedError("expired", `${WHAT}: expired (exp ${stamp(err.payload.exp)}); read a fresh one`, { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return new AttestationRejectedError("wrong_audience", `${WHAT}: audience ${JSON.stringify(err.payload.aud)} is not this controller's (${trust.audience}); the agent must request audience=${trust.audience}`, { cause: err });
    if (err.claim === "iss") return new AttestationRejectedError("wrong_issuer", `${WHAT}: issuer ${JSON.stringify(err.payload.iss)} is not Google (${GOOGLE_ISSUERS[0]})`, { cause: err });
    if (err.claim === "iat" || err.claim === "nbf") return new AttestationRejectedError("not_yet_valid", `${WHAT}: ${err.claim} ${err.message}`, { cause: err });
    return new AttestationRejectedError("malformed", `${WHAT}: claim ${err.claim}: ${err.message}`, { cause: err });
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return new AttestationRejectedError("untrusted_signer", `${WHAT}: signed with a key that is not among Google's keys in ${trust.source}; a controller on the shipped copy must set inventory.instanceIdentity.gcp.jwksUrl`, { cause: err });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JOSEAlgNotAllowed) {
    return new AttestationRejectedError("bad_signature", `${WHAT}: ${err.message}`, { cause: err });
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) {
    return new AttestationRejectedError("malformed", `${WHAT}: ${err.message}`, { cause: err });
  }
  // The JWKS URL did not answer (timeout, network, not a JWKS): the controller's problem, retryable.
  return new TrustUnavailableError(`${WHAT}: cannot get Google's keys from ${trust.source}: ${(err as Error).message}`, { cause: err });
}

function stamp(seconds: unknown): string {
  return typeof seconds === "number" ? new Date(seconds * 1000).toISOString() : String(seconds);
}
