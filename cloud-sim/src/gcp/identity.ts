/**
 * The GCE simulator's instance identity tokens: an RS256 key generated per run (published as a
 * JWKS, like https://www.googleapis.com/oauth2/v3/certs) signs what
 * `instance/service-accounts/default/identity?audience=…&format=full` returns: a JWT with
 * Google's issuer, the requested audience, one hour of life, the default service account, and (with
 * format=full) the `google.compute_engine` claims naming the instance. A controller trusts `jwks`
 * in place of Google's keys.
 */
import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from "jose";

export const GOOGLE_ISSUER = "https://accounts.google.com";
const LIFETIME_SECONDS = 3600;

export interface GceTokenClaims {
  audience: string;
  full: boolean;
  instanceId: string;
  instanceName: string;
  projectId: string;
  projectNumber: string;
  zone: string;
  /** When the instance was created (its launch time). */
  createdAt: Date;
  /** Issue time (the store's identity age already applied). */
  issuedAt: Date;
}

export interface GcpIdentitySigner {
  jwks: JSONWebKeySet;
  token(c: GceTokenClaims): Promise<string>;
}

export async function createGcpIdentitySigner(): Promise<GcpIdentitySigner> {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { modulusLength: 2048, extractable: true });
  const kid = randomBytes(20).toString("hex");
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return {
    jwks: { keys: [jwk] },
    token: async (c) => {
      const iat = Math.floor(c.issuedAt.getTime() / 1000);
      const serviceAccount = `${c.projectNumber}-compute@developer.gserviceaccount.com`;
      const subject = (BigInt(c.projectNumber) * 1000n + 1n).toString();
      const claims: Record<string, unknown> = { azp: subject, email: serviceAccount, email_verified: true };
      if (c.full) {
        claims.google = {
          compute_engine: {
            instance_creation_timestamp: Math.floor(c.createdAt.getTime() / 1000),
            instance_id: c.instanceId,
            instance_name: c.instanceName,
            project_id: c.projectId,
            project_number: Number(c.projectNumber),
            zone: c.zone,
          },
        };
      }
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
        .setIssuer(GOOGLE_ISSUER)
        .setAudience(c.audience)
        .setSubject(subject)
        .setIssuedAt(iat)
        .setExpirationTime(iat + LIFETIME_SECONDS)
        .sign(privateKey);
    },
  };
}
