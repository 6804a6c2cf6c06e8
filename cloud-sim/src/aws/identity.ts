/**
 * The AWS simulator's instance identity signature: like AWS's per-region RSA-2048 certificates, one
 * self-signed RSA-2048 certificate shaped like theirs (basicConstraints CA, keyUsage
 * digitalSignature only; generated per run, for every region) signs each identity
 * document as a PKCS#7 SignedData with SHA-256, the document attached, no certificate inside;
 * IMDS serves it base64 in 64-character lines at `/latest/dynamic/instance-identity/rsa2048`.
 * `certificatePem` is what a controller trusts instead of AWS's published certificates.
 */
import { base64Lines, selfSignedRsa, signPkcs7 } from "../signing.js";

export interface AwsIdentitySigner {
  /** The signing certificate (self-signed), as AWS publishes its per-region ones. */
  certificatePem: string;
  /** The `rsa2048` answer for `document` (the exact text IMDS serves as the document). */
  rsa2048(document: string, signingTime: Date): Promise<string>;
}

/** `bare`: a certificate without extensions, like those of AWS's older regions (default: like us-east-1's). */
export async function createAwsIdentitySigner(o: { bare?: boolean } = {}): Promise<AwsIdentitySigner> {
  const signer = await selfSignedRsa("C=US, ST=Washington State, L=Seattle, O=weft cloud-sim (test key; not Amazon Web Services)", { ca: false, days: 3650, ...(o.bare ? { bare: true } : {}) });
  return {
    certificatePem: signer.pem,
    rsa2048: async (document, signingTime) => base64Lines(await signPkcs7(new TextEncoder().encode(document), signer, { signingTime, certificates: [] })),
  };
}
