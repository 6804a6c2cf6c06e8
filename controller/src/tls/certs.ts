/**
 * Certificate generation with @peculiar/x509 over WebCrypto: the controller's
 * own CA (ECDSA P-256, self-signed, path length 0) and the API's server
 * certificate signed by it. Keys leave this file as PKCS#8 PEM.
 */
// tsyringe, used inside @peculiar/x509, needs the Reflect metadata API loaded first.
import "reflect-metadata";
import { X509Certificate as NodeCertificate, createPrivateKey, createPublicKey, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" };
const EC_SIGN = { name: "ECDSA", hash: "SHA-256" };
const HOUR = 3_600_000;
/** Certificates start an hour early, so a host whose clock is a little behind still accepts them. */
const BACKDATE = HOUR;

const subtle = webcrypto.subtle;
/** Node's WebCrypto, handed to @peculiar/x509 explicitly rather than found on globalThis. */
const provider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];

export interface KeyAndCert {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export async function createCa(opts: { now: Date; notAfter: Date }): Promise<KeyAndCert> {
  const keys = await subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      // A random suffix tells one controller's CA from another's in a certificate viewer.
      name: `CN=weft controller CA ${randomBytes(4).toString("hex")}, O=weft`,
      notBefore: new Date(opts.now.getTime() - BACKDATE),
      notAfter: opts.notAfter,
      keys,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider),
      ],
    },
    provider,
  );
  return { certPem: pem(cert), keyPem: await pkcs8Pem(keys.privateKey) };
}

/** A server certificate for `sans` (host names and IP addresses) signed by `ca`. */
export async function issueServerCertificate(ca: KeyAndCert, opts: { sans: string[]; now: Date; notAfter: Date }): Promise<KeyAndCert> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await subtle.importKey("pkcs8", createPrivateKey(ca.keyPem).export({ type: "pkcs8", format: "der" }), EC_KEY, false, ["sign"]);
  const keys = await subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: "CN=weft controller API, O=weft",
      issuer: caCert.subject,
      notBefore: new Date(opts.now.getTime() - BACKDATE),
      notAfter: opts.notAfter,
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(opts.sans.map((value) => ({ type: isIP(value) ? ("ip" as const) : ("dns" as const), value }))),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, provider),
      ],
    },
    provider,
  );
  return { certPem: pem(cert), keyPem: await pkcs8Pem(keys.privateKey) };
}

/** The DNS names and IP addresses a certificate is valid for, as written in it. */
export function subjectAltNames(certPem: string): string[] {
  const ext = new x509.X509Certificate(certPem).getExtension(x509.SubjectAlternativeNameExtension);
  return (ext?.names.toJSON() ?? []).filter((n) => n.type === "dns" || n.type === "ip").map((n) => n.value);
}

/** True when `keyPem` is the private key of `certPem`. */
export function keyMatches(certPem: string, keyPem: string): boolean {
  const fromCert = new NodeCertificate(certPem).publicKey.export({ type: "spki", format: "der" });
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
  return Buffer.compare(fromCert, fromKey) === 0;
}

/** PEM ending in a newline, as files and Node's own X509Certificate.toString() have it. */
function pem(cert: x509.X509Certificate): string {
  return `${cert.toString("pem").trimEnd()}\n`;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey("pkcs8", key));
  const body = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}
