/** What a verified instance document proves, in the inventory's terms. */
import type { AttestationProvider } from "@weft/protocol";

/** How a verified document is kept from being used twice. */
export type ReplayGuard =
  /** AWS: one enrollment per instance launch; a later launch (larger pendingTime) may enroll again. */
  | { kind: "launch"; marker: number; label: string }
  /** GCP: one enrollment per token; only a token issued later (larger iat) may enroll the instance again. */
  | { kind: "token"; marker: number; label: string }
  /** Azure: the controller-issued nonce in the document, consumed once. */
  | { kind: "nonce"; nonce: string };

export interface AttestedInstance {
  provider: AttestationProvider;
  /** AWS account id, Azure subscription id, GCP project id: as signed. */
  account: string;
  /** Instance id, Azure vmId, numeric GCE instance id: as signed. */
  id: string;
  region?: string;
  zone?: string;
  /** Private addresses the signed document itself names (AWS `privateIp`); empty when it names none. */
  privateIps: string[];
  /** What proved it, for the log: e.g. "AWS RSA-2048 PKCS#7 (us-east-1 certificate)". */
  evidence: string;
  replay: ReplayGuard;
}
