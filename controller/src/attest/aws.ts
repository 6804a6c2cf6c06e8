/**
 * AWS: the instance identity document and its RSA-2048 PKCS#7 signature
 * (`/latest/dynamic/instance-identity/rsa2048`, SHA-256). The PKCS#7 carries the document as its
 * content and no certificate; AWS publishes one self-signed certificate per region, so the
 * region the signed content names picks the certificate the signature must verify against.
 *
 * Why RSA-2048: of the three signatures IMDS serves, `pkcs7` is DSA with SHA-1 and one certificate
 * for most regions, `signature` is a bare RSA signature with SHA-1 (not a PKCS#7), and `rsa2048` is
 * a PKCS#7 with SHA-256 under per-region RSA-2048 keys, in every region, so a stock CMS verifier
 * checks it and a key compromised in one region cannot sign for another.
 *
 * What it proves: AWS signed this document for this instance id, account, region and launch
 * (`pendingTime`). It never expires, so it is a bearer credential: the controller accepts it
 * once per launch (ReplayGuard "launch") and checks its private address against the inventory.
 */
import type { AwsAttestation } from "@weft/protocol";
import { parseIpv4 } from "@weft/protocol";
import { z } from "zod";
import { AttestationRejectedError } from "./errors.js";
import { parseSignedData, verifySignedData } from "./pkcs7.js";
import type { AwsTrust } from "./trust.js";
import type { AttestedInstance } from "./types.js";

const WHAT = "aws instance identity document";

/** The fields of the identity document the controller uses; AWS always sends them. */
export const AwsIdentityDocument = z.object({
  accountId: z.string().regex(/^[0-9]{12}$/, "must be a 12-digit account id"),
  instanceId: z.string().regex(/^i-[0-9a-f]{8,17}$/, "must be an instance id like i-0123456789abcdef0"),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-[0-9]+$/, "must be a region like eu-west-1"),
  availabilityZone: z.string().min(1).max(64),
  pendingTime: z.string().refine((s) => !Number.isNaN(Date.parse(s)), { message: "must be a time like 2026-01-02T03:04:05Z" }),
  /** Absent or null on an IPv6-only instance. */
  privateIp: z
    .string()
    .refine((s) => parseIpv4(s) !== undefined, { message: "must be an IPv4 address" })
    .nullish(),
});
export type AwsIdentityDocument = z.infer<typeof AwsIdentityDocument>;

function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new AttestationRejectedError("malformed", `${WHAT}: ${what} is not JSON`, { cause: err });
  }
}

/** JSON with object keys sorted: two documents that say the same compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

export async function verifyAwsAttestation(att: AwsAttestation, trust: AwsTrust, now: Date): Promise<AttestedInstance> {
  const first = parseSignedData(att.signature, WHAT);
  const signedText = first.content === undefined ? att.document : new TextDecoder().decode(first.content);
  const signed = json(signedText, "the signed content");
  if (first.content !== undefined && canonical(json(att.document, "the document")) !== canonical(signed)) {
    throw new AttestationRejectedError("bad_signature", `${WHAT}: the document sent differs from the one AWS signed (the PKCS#7 content)`);
  }
  const parsed = AwsIdentityDocument.safeParse(signed);
  if (!parsed.success) {
    throw new AttestationRejectedError("malformed", `${WHAT}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, { cause: parsed.error });
  }
  const doc = parsed.data;
  const candidates = [...(trust.byRegion.get(doc.region) ?? []), ...(trust.byRegion.get("*") ?? [])];
  if (candidates.length === 0) {
    throw new AttestationRejectedError("unknown_region", `${WHAT}: no certificate for region ${doc.region} in ${trust.source}; add it under inventory.instanceIdentity.aws.certificates`);
  }
  const detached = first.content === undefined ? new TextEncoder().encode(att.document) : undefined;
  let failure: AttestationRejectedError | undefined;
  for (const cert of candidates) {
    // A fresh parse per candidate: verification sets the SignedData's certificates to the candidate.
    const attempt = cert === candidates[0] ? first : parseSignedData(att.signature, WHAT);
    try {
      await verifySignedData(attempt, { pinned: cert, ...(detached ? { detached } : {}), now, what: WHAT });
      return {
        provider: "aws",
        account: doc.accountId,
        id: doc.instanceId,
        region: doc.region,
        zone: doc.availabilityZone,
        privateIps: doc.privateIp ? [doc.privateIp] : [],
        evidence: `AWS RSA-2048 PKCS#7 (${trust.byRegion.has(doc.region) ? `${doc.region} certificate` : "certificate for any region"}), launch ${doc.pendingTime}`,
        replay: { kind: "launch", marker: Date.parse(doc.pendingTime), label: `launch ${doc.pendingTime}` },
      };
    } catch (err) {
      if (!(err instanceof AttestationRejectedError)) throw err;
      // A signer that matched but whose signature failed says more than "another certificate".
      if (failure === undefined || err.reason === "bad_signature") failure = err;
    }
  }
  if (failure?.reason === "untrusted_signer") {
    throw new AttestationRejectedError("untrusted_signer", `${WHAT}: not signed by the certificate for region ${doc.region} (${trust.source})`, { cause: failure });
  }
  throw failure ?? new AttestationRejectedError("bad_signature", `${WHAT}: the signature does not verify`);
}
