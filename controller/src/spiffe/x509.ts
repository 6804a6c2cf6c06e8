/**
 * X.509 for the trust domain (@peculiar/x509 over WebCrypto): the trust domain's CA (ECDSA P-256,
 * self-signed, path length 0, URI SAN `spiffe://<trust domain>`) and X.509-SVIDs signed by it from
 * an agent's CSR. The CSR only proves possession of the key and carries it: the SVID's subject and
 * its one URI SAN come from the SPIFFE ID the controller authorized, never from the CSR.
 *
 * SVIDs follow the X509-SVID standard: exactly one URI SAN, CA false (critical), key usage
 * digitalSignature (critical, with keyEncipherment and keyAgreement), extended key usage serverAuth
 * and clientAuth, so the same certificate serves both ends of mTLS.
 */
// tsyringe, used inside @peculiar/x509, needs the Reflect metadata API loaded first.
import "reflect-metadata";
import { createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const;
const EC_SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
/** SVIDs start a little early, so a host whose clock is slightly behind accepts them at once. */
const SVID_BACKDATE_MS = 30_000;
/** The CA starts an hour early (like the API's CA). */
const CA_BACKDATE_MS = 3_600_000;

const subtle = webcrypto.subtle;
/** Node's WebCrypto, handed to @peculiar/x509 explicitly rather than found on globalThis. */
const provider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];

/** A CSR that cannot be signed: the message names what is wrong. */
export class CsrError extends Error {
  override readonly name = "CsrError";
}

export interface CaMaterial {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export async function createTrustDomainCa(opts: { trustDomain: string; now: Date; notAfter: Date }): Promise<CaMaterial> {
  const keys = await subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: `CN=weft SPIFFE CA ${opts.trustDomain} ${randomBytes(4).toString("hex")}, O=weft`,
      notBefore: new Date(opts.now.getTime() - CA_BACKDATE_MS),
      notAfter: opts.notAfter,
      keys,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${opts.trustDomain}` }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider),
      ],
    },
    provider,
  );
  return { certPem: pem(cert), keyPem: await pkcs8Pem(keys.privateKey) };
}

/** A parsed, verified CSR: its public key (P-256 only) ready to certify. */
export async function checkCsr(csrPem: string): Promise<webcrypto.CryptoKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new CsrError(`csr: not a PEM PKCS#10 certificate request (${(err as Error).message})`);
  }
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== "ECDSA" || alg.namedCurve !== "P-256") {
    throw new CsrError(`csr: the key is ${alg.name ?? "unknown"}${alg.namedCurve ? ` ${alg.namedCurve}` : ""}; SVID keys must be ECDSA P-256`);
  }
  let valid = false;
  try {
    valid = await csr.verify(provider);
  } catch {
    valid = false;
  }
  if (!valid) throw new CsrError("csr: its signature does not verify with its own key");
  return csr.publicKey.export(EC_KEY, ["verify"], provider);
}

export interface SvidIssue {
  ca: CaMaterial;
  spiffeId: string;
  publicKey: webcrypto.CryptoKey;
  now: Date;
  notAfter: Date;
}

/** The X.509-SVID (PEM) for `spiffeId` over `publicKey`, signed by the trust domain's CA. */
export async function issueX509Svid(o: SvidIssue): Promise<string> {
  const caCert = new x509.X509Certificate(o.ca.certPem);
  const caKey = await subtle.importKey("pkcs8", createPrivateKey(o.ca.keyPem).export({ type: "pkcs8", format: "der" }), EC_KEY, false, ["sign"]);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: "O=weft, OU=SPIFFE",
      issuer: caCert.subject,
      notBefore: new Date(o.now.getTime() - SVID_BACKDATE_MS),
      notAfter: o.notAfter,
      publicKey: o.publicKey,
      signingKey: caKey,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: "url", value: o.spiffeId }], true),
        await x509.SubjectKeyIdentifierExtension.create(o.publicKey, false, provider),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, provider),
      ],
    },
    provider,
  );
  return pem(cert);
}

/** A positive 128-bit serial number, hex. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString("hex");
}

function pem(cert: x509.X509Certificate): string {
  return `${cert.toString("pem").trimEnd()}\n`;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey("pkcs8", key));
  const body = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}
