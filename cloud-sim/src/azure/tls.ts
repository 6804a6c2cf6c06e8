/**
 * A throwaway test CA and the simulator's server certificate. ARM is HTTPS only (the SDKs'
 * bearer-token policy refuses plain HTTP), so the simulator serves TLS and hands its CA PEM to
 * clients, which trust it in-process (`tlsOptions: { ca }`) — no NODE_EXTRA_CA_CERTS needed.
 * ECDSA P-256 through @peculiar/x509 over Node's WebCrypto; nothing is written to disk.
 */
// tsyringe, used inside @peculiar/x509, needs the Reflect metadata API loaded first.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" };
const EC_SIGN = { name: "ECDSA", hash: "SHA-256" };
const DAY = 86_400_000;
const subtle = webcrypto.subtle;
const provider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];

export interface SimTls {
  /** The CA a client trusts. */
  caPem: string;
  /** The server's certificate (PEM) and PKCS#8 key (PEM), for https.createServer. */
  certPem: string;
  keyPem: string;
}

/** A fresh CA and a server certificate for 127.0.0.1, ::1, localhost and `extraSans`. */
export async function createSimTls(extraSans: string[] = []): Promise<SimTls> {
  const now = Date.now();
  const notBefore = new Date(now - DAY);
  const notAfter = new Date(now + 30 * DAY);
  const caKeys = await subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: "CN=weft cloud-sim test CA, O=weft",
      notBefore,
      notAfter,
      keys: caKeys,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, provider),
      ],
    },
    provider,
  );
  const sans = [...new Set(["127.0.0.1", "::1", "localhost", ...extraSans])];
  const keys = await subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: "CN=weft cloud-sim, O=weft",
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(sans.map((value) => ({ type: isIP(value) ? ("ip" as const) : ("dns" as const), value }))),
        await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey, false, provider),
      ],
    },
    provider,
  );
  return { caPem: pem(ca), certPem: pem(cert), keyPem: await pkcs8Pem(keys.privateKey) };
}

function pem(cert: x509.X509Certificate): string {
  return `${cert.toString("pem").trimEnd()}\n`;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const body = Buffer.from(await subtle.exportKey("pkcs8", key)).toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}
