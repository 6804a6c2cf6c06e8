/**
 * The Azure simulator's attested data: a per-run test PKI shaped like Azure's (a root CA, an
 * intermediate issuing CA, and a signing certificate for `metadata.azure.com`) signs the attested
 * document as a PKCS#7 SignedData with SHA-256, the JSON attached and only the signing certificate
 * inside, as IMDS does. A controller trusts `rootPem` and adds `intermediatePem` to its chain, in
 * place of Microsoft's roots and issuing CAs.
 */
import { base64Lines, issuedRsa, selfSignedRsa, signPkcs7 } from "../signing.js";

/** How long an attested document is valid (IMDS: `timeStamp.expiresOn`). */
export const ATTESTED_LIFETIME_MS = 6 * 3_600_000;

export interface AzureAttestedSigner {
  rootPem: string;
  intermediatePem: string;
  /** The attested document's `signature` (base64, one line) over `content`. */
  sign(content: string, signingTime: Date): Promise<string>;
}

export async function createAzureAttestedSigner(): Promise<AzureAttestedSigner> {
  const root = await selfSignedRsa("C=US, O=weft cloud-sim, CN=cloud-sim Azure attestation test root (not Microsoft)", { ca: true, days: 3650 });
  const intermediate = await issuedRsa(root, "C=US, O=weft cloud-sim, CN=cloud-sim Azure TLS issuing CA (test)", { ca: true, days: 1825 });
  const leaf = await issuedRsa(intermediate, "CN=metadata.azure.com", { ca: false, dnsNames: ["metadata.azure.com"], days: 365 });
  return {
    rootPem: root.pem,
    intermediatePem: intermediate.pem,
    sign: async (content, signingTime) => base64Lines(await signPkcs7(new TextEncoder().encode(content), leaf, { signingTime, certificates: [leaf] })).replace(/\n/g, ""),
  };
}

/** IMDS's timestamp form: `MM/DD/YY HH:MM:SS -0000`. */
export function azureTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${p(d.getUTCFullYear() % 100)} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} -0000`;
}
