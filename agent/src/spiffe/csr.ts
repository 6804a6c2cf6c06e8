/**
 * An SVID's key pair, made on this host (ECDSA P-256 over WebCrypto), and the PKCS#10 request that
 * carries its public key to the controller. The private key stays in this process's memory: it is
 * never written to disk or sent anywhere (a restarted agent makes new keys and gets new SVIDs).
 */
// tsyringe, used inside @peculiar/x509, needs the Reflect metadata API loaded first.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const;
const subtle = webcrypto.subtle;
const provider = webcrypto as unknown as Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[1];

export interface SvidKey {
  /** PKCS#8 DER of the private key (what the Workload API hands the workload). */
  pkcs8: Buffer;
  /** The CSR for `spiffeId`, PEM. */
  csrPem: string;
}

export async function newSvidKey(spiffeId: string): Promise<SvidKey> {
  const keys = await subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }])],
    },
    provider,
  );
  return { pkcs8: Buffer.from(await subtle.exportKey("pkcs8", keys.privateKey)), csrPem: csr.toString("pem") };
}
