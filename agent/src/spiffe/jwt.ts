/**
 * JWT-SVIDs on the agent: tokens signed by the controller (ES256) for a SPIFFE ID and audience,
 * cached until half their lifetime has passed (one request per ID and audience at a time), and
 * validation of any JWT-SVID against the trust bundle's JWT keys — what `ValidateJWTSVID` answers,
 * for applications that prefer tokens to mTLS.
 */
import { createLocalJWKSet, jwtVerify, type JWTPayload } from "jose";
import { SPIFFE_ID_PATTERN, type JwtAuthority } from "@weft/protocol";
import type { BundleSource } from "./bundle-watch.js";

export type JwtSigner = (spiffeId: string, audience: string[]) => Promise<{ token: string; expiresAt: string }>;

/** A token that does not validate; the message says why (for the caller, not a secret). */
export class JwtSvidInvalidError extends Error {
  override readonly name = "JwtSvidInvalidError";
}

export class JwtSvids {
  readonly #cache = new Map<string, { token: string; refreshAt: number }>();
  readonly #pending = new Map<string, Promise<string>>();

  constructor(
    private readonly sign: JwtSigner,
    private readonly now: () => number = Date.now,
  ) {}

  /** A JWT-SVID for `spiffeId` with `audience` (cached while less than half its lifetime has passed). */
  async fetch(spiffeId: string, audience: string[]): Promise<string> {
    const key = `${spiffeId}\n${[...new Set(audience)].sort().join("\n")}`;
    const hit = this.#cache.get(key);
    if (hit && this.now() < hit.refreshAt) return hit.token;
    let pending = this.#pending.get(key);
    if (!pending) {
      const issuedAt = this.now();
      pending = this.sign(spiffeId, [...new Set(audience)])
        .then(({ token, expiresAt }) => {
          this.#cache.set(key, { token, refreshAt: issuedAt + (Date.parse(expiresAt) - issuedAt) / 2 });
          return token;
        })
        .finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }
}

/** The bundle's JWT keys as a JWKS for jose (which takes `use: sig` or none; the bundle says `jwt-svid`). */
export function jwksOf(keys: readonly JwtAuthority[]): ReturnType<typeof createLocalJWKSet> {
  return createLocalJWKSet({ keys: keys.map(({ use: _use, ...k }) => k) });
}

/**
 * Validates `token` for `audience` against the bundle's JWT keys: signature (ES256, a known kid),
 * expiry, the audience, and a subject that is a SPIFFE ID of the bundle's trust domain. Returns the
 * SPIFFE ID and the claims. Throws JwtSvidInvalidError.
 */
export async function validateJwtSvid(bundle: BundleSource, token: string, audience: string): Promise<{ spiffeId: string; claims: JWTPayload }> {
  const current = bundle.current;
  if (!current) throw new JwtSvidInvalidError("no trust bundle yet: the agent has not heard from the controller");
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, jwksOf(current.jwtAuthorities), { algorithms: ["ES256"], audience, requiredClaims: ["sub", "exp", "aud"] }));
  } catch (err) {
    throw new JwtSvidInvalidError(`JWT-SVID does not validate: ${(err as Error).message}`);
  }
  const sub = payload.sub ?? "";
  const m = SPIFFE_ID_PATTERN.exec(sub);
  if (!m || m[1] !== current.trustDomain) throw new JwtSvidInvalidError(`JWT-SVID subject ${JSON.stringify(sub)} is not a SPIFFE ID of trust domain ${current.trustDomain}`);
  return { spiffeId: sub, claims: payload };
}
