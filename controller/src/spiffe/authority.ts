/**
 * The trust domain's signing material in `<stateDir>/spiffe/` (0700), separate from the REST API's
 * CA in `tls/`: a compromise or rotation of one never touches the other.
 *
 *   ca.crt   the trust domain's X.509 CA (10 years)      0644
 *   ca.key   its private key                              0600
 *   jwt.key  the JWT-SVID signing key (ES256, PKCS#8)     0600
 *
 * Made at first start and read at every start after. A key readable by others is tightened to
 * 0600 with a warning; a pair with one half missing, or a key that is not its certificate's,
 * stops the start: a new CA would silently invalidate every SVID and bundle in the field.
 * (Rotation of the CA itself is not done here.)
 */
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { chmod, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { calculateJwkThumbprint, exportJWK, importPKCS8, SignJWT, type CryptoKey as JoseKey } from "jose";
import type { JwtAuthority, TrustBundle } from "@weft/protocol";
import type { Logger } from "pino";
import { createTrustDomainCa, type CaMaterial } from "./x509.js";

export const SPIFFE_DIR = "spiffe";
const CA_CERT = "ca.crt";
const CA_KEY = "ca.key";
const JWT_KEY = "jwt.key";
const CA_LIFETIME_MS = 3650 * 86_400_000;

/** The trust domain's files are unusable: the controller refuses to start rather than replace them. */
export class SpiffeStateError extends Error {
  override readonly name = "SpiffeStateError";
  readonly retryable = false;
}

export class TrustDomainAuthority {
  private constructor(
    readonly trustDomain: string,
    readonly ca: CaMaterial,
    private readonly jwtKey: JoseKey,
    readonly jwtAuthority: JwtAuthority,
  ) {}

  /** Loads the CA and JWT key from `dir` (`<stateDir>/spiffe`), creating them on first start. */
  static async open(o: { dir: string; trustDomain: string; log: Logger; now?: Date }): Promise<TrustDomainAuthority> {
    await mkdir(o.dir, { recursive: true, mode: 0o700 });
    await chmod(o.dir, 0o700);
    const ca = await loadOrCreateCa(o.dir, o.trustDomain, o.now ?? new Date(), o.log);
    const jwtPem = await loadOrCreateJwtKey(o.dir, o.log);
    const jwtKey = await importPKCS8(jwtPem, "ES256");
    const pub = await exportJWK(createPublicKey(createPrivateKey(jwtPem)));
    const kid = await calculateJwkThumbprint(pub);
    const authority: JwtAuthority = { kty: "EC", crv: "P-256", x: String(pub.x), y: String(pub.y), kid, alg: "ES256", use: "jwt-svid" };
    return new TrustDomainAuthority(o.trustDomain, ca, jwtKey, authority);
  }

  get caNotAfter(): Date {
    return new Date(new X509Certificate(this.ca.certPem).validTo);
  }

  /** The bundle every agent trusts (sequence and time are the publisher's). */
  bundle(sequence: number, updatedAt: string): TrustBundle {
    return { version: 1, trustDomain: this.trustDomain, x509Authorities: [this.ca.certPem], jwtAuthorities: [this.jwtAuthority], sequence, updatedAt };
  }

  /** A JWT-SVID: `sub` the SPIFFE ID, `aud` the audience, expiring at `expiresAt`. */
  signJwt(spiffeId: string, audience: string[], now: Date, expiresAt: Date): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: this.jwtAuthority.kid, typ: "JWT" })
      .setSubject(spiffeId)
      .setAudience(audience)
      .setIssuedAt(Math.floor(now.getTime() / 1000))
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.jwtKey);
  }
}

async function loadOrCreateCa(dir: string, trustDomain: string, now: Date, log: Logger): Promise<CaMaterial> {
  const [certPem, keyPem] = await Promise.all([readOptional(join(dir, CA_CERT)), readOptional(join(dir, CA_KEY))]);
  if (certPem !== undefined && keyPem !== undefined) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
      if (!cert.publicKey.equals(createPublicKey(createPrivateKey(keyPem)))) {
        throw new SpiffeStateError(`${join(dir, CA_KEY)} is not the key of ${CA_CERT}: restore both from a backup`);
      }
    } catch (err) {
      if (err instanceof SpiffeStateError) throw err;
      throw new SpiffeStateError(`${join(dir, CA_CERT)} or ${CA_KEY} cannot be read as a certificate and key: restore both from a backup`, { cause: err });
    }
    const want = `spiffe://${trustDomain}`;
    if (!(cert.subjectAltName ?? "").split(/,\s*/).includes(`URI:${want}`)) {
      throw new SpiffeStateError(`${join(dir, CA_CERT)} is the CA of another trust domain (${cert.subjectAltName ?? "none"}), not ${want}: changing identity.trustDomain needs a new CA; move ${dir} away to make one`);
    }
    await tighten(join(dir, CA_KEY), log);
    return { certPem, keyPem };
  }
  if (certPem !== undefined || keyPem !== undefined) {
    const missing = certPem === undefined ? CA_CERT : CA_KEY;
    throw new SpiffeStateError(`${join(dir, missing)} is missing but its pair is there: restore it from a backup, or move ${dir} away to make a new trust domain CA (every SVID then changes)`);
  }
  const ca = await createTrustDomainCa({ trustDomain, now, notAfter: new Date(now.getTime() + CA_LIFETIME_MS) });
  await writeAtomic(join(dir, CA_KEY), ca.keyPem, 0o600);
  await writeAtomic(join(dir, CA_CERT), ca.certPem, 0o644);
  log.info({ trustDomain }, "created the trust domain's SPIFFE CA");
  return ca;
}

async function loadOrCreateJwtKey(dir: string, log: Logger): Promise<string> {
  const path = join(dir, JWT_KEY);
  const existing = await readOptional(path);
  if (existing !== undefined) {
    try {
      const key = createPrivateKey(existing);
      if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new Error(`a ${key.asymmetricKeyType} key`);
    } catch (err) {
      throw new SpiffeStateError(`${path} is not an EC P-256 private key: restore it from a backup, or remove it to make a new one (JWT-SVIDs signed by the old key stop validating)`, { cause: err });
    }
    await tighten(path, log);
    return existing;
  }
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  await writeAtomic(path, keyPem, 0o600);
  log.info("created the trust domain's JWT-SVID signing key");
  return keyPem;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function tighten(path: string, log: Logger): Promise<void> {
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  await chmod(path, 0o600);
  log.warn({ path, mode: mode.toString(8) }, "a trust domain key was readable by others; set its mode to 0600");
}

let seq = 0;
async function writeAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${++seq}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}
