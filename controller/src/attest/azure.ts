/**
 * Azure: the attested data document (`/metadata/attested/document?nonce=…`), a PKCS#7 SignedData
 * whose content is JSON (`vmId`, `subscriptionId`, `nonce`, `timeStamp`, `plan`, `sku`, …), signed
 * by a `metadata.azure.com` certificate. IMDS puts only that certificate in the PKCS#7: the
 * intermediates come from the configured bundle, and the chain must end at a configured root.
 *
 * What it proves: Azure's metadata service signed, for this VM id and subscription, the nonce this
 * controller issued for this enrollment, before `timeStamp.expiresOn`. The nonce makes it fresh and
 * single-use (consumed atomically by the attestor); the document names no region and no address.
 */
import { ENROLL_NONCE_PATTERN, type AzureAttestation } from "@weft/protocol";
import { z } from "zod";
import { AttestationRejectedError } from "./errors.js";
import { certificateNames, parseSignedData, validAt, verifySignedData } from "./pkcs7.js";
import type { AzureTrust } from "./trust.js";
import type { AttestedInstance } from "./types.js";

const WHAT = "azure attested document";

/** Names Azure's metadata service signs attested data with, in its public and sovereign clouds. */
export const AZURE_SIGNER_NAME = /^(.+\.)?metadata\.(azure\.(com|us|cn)|microsoftazure\.de)$/i;

/** How far in the future a document's createdOn may be (clock skew between Azure and this controller). */
const MAX_SKEW_MS = 5 * 60_000;

const guid = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export const AzureAttestedDocument = z.object({
  nonce: z.string().max(64),
  vmId: z.string().regex(guid, "must be a VM id (a GUID)"),
  subscriptionId: z.string().regex(guid, "must be a subscription id (a GUID)"),
  timeStamp: z.object({ createdOn: z.string(), expiresOn: z.string() }),
});
export type AzureAttestedDocument = z.infer<typeof AzureAttestedDocument>;

/** IMDS's timestamps: `MM/DD/YY HH:MM:SS -0000`. Undefined when it is not one. */
export function parseAzureTime(s: string): Date | undefined {
  const m = /^(\d{2})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s.trim());
  if (!m) return undefined;
  const n = (i: number) => Number(m[i]);
  if (n(1) < 1 || n(1) > 12 || n(2) < 1 || n(2) > 31 || n(4) > 23 || n(5) > 59 || n(6) > 59) return undefined;
  const offsetMs = (m[7] === "-" ? -1 : 1) * (n(8) * 60 + n(9)) * 60_000;
  const t = Date.UTC(2000 + n(3), n(1) - 1, n(2), n(4), n(5), n(6)) - offsetMs;
  return Number.isNaN(t) ? undefined : new Date(t);
}

export async function verifyAzureAttestation(att: AzureAttestation, trust: AzureTrust, now: Date): Promise<AttestedInstance> {
  const parsed = parseSignedData(att.signature, WHAT);
  if (parsed.content === undefined) throw new AttestationRejectedError("malformed", `${WHAT}: the PKCS#7 carries no content`);
  // Expired intermediates are left out so the chain builder never settles on one.
  const signer = await verifySignedData(parsed, { trusted: trust.roots, extra: trust.intermediates.filter((c) => validAt(c, now)), now, what: WHAT });
  const names = certificateNames(signer);
  if (!names.some((n) => AZURE_SIGNER_NAME.test(n))) {
    throw new AttestationRejectedError("untrusted_signer", `${WHAT}: signed by ${names.join(", ") || "a certificate without a name"}, not by Azure's metadata service (metadata.azure.com)`);
  }
  let content: unknown;
  try {
    content = JSON.parse(new TextDecoder().decode(parsed.content)) as unknown;
  } catch (err) {
    throw new AttestationRejectedError("malformed", `${WHAT}: the signed content is not JSON`, { cause: err });
  }
  const doc = AzureAttestedDocument.safeParse(content);
  if (!doc.success) throw new AttestationRejectedError("malformed", `${WHAT}: ${doc.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, { cause: doc.error });
  const { vmId, subscriptionId, nonce, timeStamp } = doc.data;
  const createdOn = parseAzureTime(timeStamp.createdOn);
  const expiresOn = parseAzureTime(timeStamp.expiresOn);
  if (!createdOn || !expiresOn) throw new AttestationRejectedError("malformed", `${WHAT}: timeStamp ${JSON.stringify(timeStamp)} is not MM/DD/YY HH:MM:SS -0000`);
  if (expiresOn.getTime() <= now.getTime()) throw new AttestationRejectedError("expired", `${WHAT}: expired at ${expiresOn.toISOString()}; read a fresh one`);
  if (createdOn.getTime() > now.getTime() + MAX_SKEW_MS) throw new AttestationRejectedError("not_yet_valid", `${WHAT}: created at ${createdOn.toISOString()}, in the future; check this controller's clock`);
  if (!ENROLL_NONCE_PATTERN.test(nonce)) {
    throw new AttestationRejectedError("unknown_nonce", `${WHAT}: it carries no enrollment nonce (${JSON.stringify(nonce.slice(0, 20))}); the agent must ask POST /v1/enroll/nonce and pass it to IMDS`);
  }
  return {
    provider: "azure",
    account: subscriptionId,
    id: vmId,
    privateIps: [],
    evidence: `Azure attested data PKCS#7 (signed by ${names[0]}), nonce ${nonce}`,
    replay: { kind: "nonce", nonce },
  };
}
