/**
 * Test signing keys for the simulated instance identity documents, generated per run and kept in
 * memory: RSA-2048 certificates made with @peculiar/x509 and PKCS#7 SignedData made with PKIjs (the
 * same libraries the controller verifies with, over Node's WebCrypto). The clouds' real keys never
 * leave the clouds; a lab or test hands the controller these certificates instead (each
 * simulator's `identity` and main.ts `--trust-out`).
 */
// tsyringe, used inside @peculiar/x509, needs the Reflect metadata API loaded first.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";

const RSA_KEY = { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
const RSA_SIGN = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
const DAY = 86_400_000;
const subtle = webcrypto.subtle;
const provider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
const pkiCrypto = new pkijs.CryptoEngine({ name: "cloud-sim", crypto: webcrypto as unknown as pkijs.CryptoEngineParameters["crypto"] });

export interface SigningCert {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
  pem: string;
}

function pem(cert: x509.X509Certificate): string {
  return `${cert.toString("pem").trimEnd()}\n`;
}

/**
 * A self-signed RSA-2048 certificate, valid from a day ago for `days`: a CA (keyCertSign) when
 * `ca`, else a signer (digitalSignature, basicConstraints CA pathlen 0, as AWS's certificates are);
 * `bare`: no extensions at all (as some of AWS's older regions' certificates).
 */
export async function selfSignedRsa(subject: string, o: { ca: boolean; days?: number; bare?: boolean }): Promise<SigningCert> {
  const keys = await subtle.generateKey(RSA_KEY, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: subject,
      serialNumber: randomSerial(),
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + (o.days ?? 365) * DAY),
      keys,
      signingAlgorithm: RSA_SIGN,
      extensions: o.bare
        ? []
        : [
            new x509.BasicConstraintsExtension(true, 0, true),
            new x509.KeyUsagesExtension(o.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature, false),
            await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider),
          ],
    },
    provider,
  );
  return { cert, keys, pem: pem(cert) };
}

/** An RSA-2048 certificate for `subject` issued by `issuer`: a CA (intermediate) or a signing leaf with DNS names. */
export async function issuedRsa(issuer: SigningCert, subject: string, o: { ca: boolean; dnsNames?: string[]; days?: number }): Promise<SigningCert> {
  const keys = await subtle.generateKey(RSA_KEY, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject,
      issuer: issuer.cert.subject,
      serialNumber: randomSerial(),
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + (o.days ?? 365) * DAY),
      publicKey: keys.publicKey,
      signingKey: issuer.keys.privateKey,
      signingAlgorithm: RSA_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(o.ca, o.ca ? 0 : undefined, true),
        new x509.KeyUsagesExtension(o.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature, true),
        ...(o.dnsNames ? [new x509.SubjectAlternativeNameExtension(o.dnsNames.map((value) => ({ type: "dns" as const, value })))] : []),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey, false, provider),
      ],
    },
    provider,
  );
  return { cert, keys, pem: pem(cert) };
}

function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(9));
  b[0] = b[0]! & 0x7f; // positive
  return Buffer.from(b).toString("hex");
}

/**
 * A PKCS#7 SignedData over `content` (attached), SHA-256 with RSA, with signed attributes
 * (content type, signing time, message digest). `certificates`: what the PKCS#7 carries (AWS
 * carries none, Azure only the signer). Returns the DER.
 */
export async function signPkcs7(content: Uint8Array, signer: SigningCert, o: { signingTime: Date; certificates: SigningCert[] }): Promise<Uint8Array> {
  const cert = pkijs.Certificate.fromBER(new Uint8Array(signer.cert.rawData));
  const digest = await subtle.digest("SHA-256", content);
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: pkijs.ContentInfo.DATA, eContent: new asn1js.OctetString({ valueHex: content.slice().buffer }) }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({
          type: 0,
          attributes: [
            new pkijs.Attribute({ type: "1.2.840.113549.1.9.3", values: [new asn1js.ObjectIdentifier({ value: pkijs.ContentInfo.DATA })] }),
            new pkijs.Attribute({ type: "1.2.840.113549.1.9.5", values: [new asn1js.UTCTime({ valueDate: o.signingTime })] }),
            new pkijs.Attribute({ type: "1.2.840.113549.1.9.4", values: [new asn1js.OctetString({ valueHex: digest })] }),
          ],
        }),
      }),
    ],
    ...(o.certificates.length > 0 ? { certificates: o.certificates.map((c) => pkijs.Certificate.fromBER(new Uint8Array(c.cert.rawData))) } : {}),
  });
  await signedData.sign(signer.keys.privateKey, 0, "SHA-256", undefined, pkiCrypto);
  const info = new pkijs.ContentInfo({ contentType: pkijs.ContentInfo.SIGNED_DATA, content: signedData.toSchema(true) });
  return new Uint8Array(info.toSchema().toBER());
}

/** Base64 in lines of 64, as IMDS serves the AWS PKCS#7. */
export function base64Lines(der: Uint8Array): string {
  return Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
}
