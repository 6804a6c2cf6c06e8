/**
 * PKCS#7 / CMS SignedData verification with PKIjs (+ asn1js for the BER): parse a base64
 * SignedData, then verify its one signer's signature over the content, and who the signer is:
 * chained to trust anchors at a given time (Azure), or one pinned certificate (AWS). Used by the
 * AWS and Azure verifiers, which decide what to trust and what the content must say.
 */
import { webcrypto } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { AttestationRejectedError } from "./errors.js";

/** Node's WebCrypto for PKIjs, passed explicitly rather than set as a global engine. */
export const pkiCrypto = new pkijs.CryptoEngine({ name: "weft-node", crypto: webcrypto as unknown as pkijs.CryptoEngineParameters["crypto"] });

const SIGNED_DATA = "1.2.840.113549.1.7.2";
/** SHA-256, SHA-384, SHA-512: what a signer may digest with (no SHA-1, no MD5). */
const DIGESTS = new Set(["2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3"]);

export interface ParsedSignedData {
  signedData: pkijs.SignedData;
  /** The encapsulated content, or undefined for a detached signature. */
  content: Uint8Array | undefined;
}

/** Decodes base64 (whitespace ignored) into a SignedData with exactly one signer. */
export function parseSignedData(base64: string, what: string): ParsedSignedData {
  const der = Buffer.from(base64.replace(/\s+/g, ""), "base64");
  const asn1 = asn1js.fromBER(new Uint8Array(der));
  if (asn1.offset === -1 || der.length === 0) throw new AttestationRejectedError("malformed", `${what}: the signature is not BER-encoded PKCS#7 (${asn1.result.error || "empty"})`);
  let signedData: pkijs.SignedData;
  try {
    const info = new pkijs.ContentInfo({ schema: asn1.result });
    if (info.contentType !== SIGNED_DATA) throw new Error(`content type ${info.contentType}, want SignedData (${SIGNED_DATA})`);
    signedData = new pkijs.SignedData({ schema: info.content });
  } catch (err) {
    throw new AttestationRejectedError("malformed", `${what}: the signature is not a PKCS#7 SignedData: ${(err as Error).message}`, { cause: err });
  }
  if (signedData.signerInfos.length !== 1) throw new AttestationRejectedError("malformed", `${what}: the PKCS#7 has ${signedData.signerInfos.length} signers, want exactly 1`);
  const digest = signedData.signerInfos[0]!.digestAlgorithm.algorithmId;
  if (!DIGESTS.has(digest)) throw new AttestationRejectedError("bad_signature", `${what}: the PKCS#7 is digested with ${digest}; only SHA-256, SHA-384 and SHA-512 are accepted`);
  const eContent = signedData.encapContentInfo.eContent;
  return { signedData, content: eContent ? new Uint8Array(eContent.getValue()) : undefined };
}

export type VerifySignedDataOptions = {
  /** The signed content, for a detached signature. */
  detached?: Uint8Array;
  /** Validity of the certificates is checked at this time. */
  now: Date;
  what: string;
} & (
  | {
      /**
       * Chain mode: the signer must chain to one of these trust anchors, through the PKCS#7's own
       * certificates and `extra` (intermediates it leaves out).
       */
      trusted: pkijs.Certificate[];
      extra?: pkijs.Certificate[];
    }
  | {
      /**
       * Pinned mode: the signer must be this very certificate (AWS publishes its signing
       * certificates, self-signed, not a CA hierarchy: `openssl smime -verify -certfile <it>
       * -noverify`). Certificates inside the PKCS#7 are ignored.
       */
      pinned: pkijs.Certificate;
    }
);

/**
 * Verifies the signature over the content, and the signer: chained to a trust anchor, or the
 * pinned certificate itself. Resolves to the signer's certificate; throws AttestationRejectedError
 * (`untrusted_signer`, `bad_signature`).
 */
export async function verifySignedData(parsed: ParsedSignedData, o: VerifySignedDataOptions): Promise<pkijs.Certificate> {
  const sd = parsed.signedData;
  const pinned = "pinned" in o ? o.pinned : undefined;
  if (pinned && !validAt(pinned, o.now)) throw new AttestationRejectedError("untrusted_signer", `${o.what}: the signing certificate is not valid at ${o.now.toISOString()}`);
  sd.certificates = pinned ? [pinned] : [...(sd.certificates ?? []), ...("extra" in o ? (o.extra ?? []) : [])];
  let result: pkijs.SignedDataVerifyResult;
  try {
    result = await sd.verify(
      {
        signer: 0,
        ...(pinned ? { checkChain: false } : { checkChain: true, trustedCerts: "trusted" in o ? o.trusted : [] }),
        checkDate: o.now,
        extendedMode: true,
        ...(o.detached === undefined || parsed.content !== undefined ? {} : { data: o.detached.slice().buffer }),
      },
      pkiCrypto,
    );
  } catch (err) {
    const e = err as pkijs.SignedDataVerifyError;
    // 2, 3: no certificate matches the signer; 5: the chain did not verify.
    if (e.code === 2 || e.code === 3) throw new AttestationRejectedError("untrusted_signer", `${o.what}: not signed by any trusted certificate`, { cause: err });
    if (e.code === 5) throw new AttestationRejectedError("untrusted_signer", `${o.what}: the signer's certificate does not chain to a trusted root (${e.message})`, { cause: err });
    if (e.code === 8) throw new AttestationRejectedError("malformed", `${o.what}: a detached signature without its content`, { cause: err });
    throw new AttestationRejectedError("bad_signature", `${o.what}: the signature does not verify over the content (${e.message})`, { cause: err });
  }
  if (!result.signatureVerified || !result.signerCertificate) throw new AttestationRejectedError("bad_signature", `${o.what}: the signature does not verify over the content`);
  return result.signerCertificate;
}

/** Certificates of a PEM bundle (text outside the BEGIN/END blocks, such as comments, is ignored). */
export function parsePemCertificates(text: string, what: string): pkijs.Certificate[] {
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g)];
  return blocks.map((m, i) => {
    try {
      return pkijs.Certificate.fromBER(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64")));
    } catch (err) {
      throw new Error(`${what}: certificate ${i + 1} does not parse: ${(err as Error).message}`, { cause: err });
    }
  });
}

/** The subject's common name and DNS names, for checking who a signer is. */
export function certificateNames(cert: pkijs.Certificate): string[] {
  const names: string[] = [];
  for (const tv of cert.subject.typesAndValues) {
    if (tv.type === "2.5.4.3") names.push(String(tv.value.valueBlock.value));
  }
  const san = cert.extensions?.find((e) => e.extnID === "2.5.29.17")?.parsedValue as pkijs.AltName | undefined;
  for (const n of san?.altNames ?? []) {
    if (n.type === 2 && typeof n.value === "string") names.push(n.value);
  }
  return names;
}

/** Whether `cert` is valid at `now` (notBefore ≤ now ≤ notAfter). */
export function validAt(cert: pkijs.Certificate, now: Date): boolean {
  return cert.notBefore.value.getTime() <= now.getTime() && now.getTime() <= cert.notAfter.value.getTime();
}
