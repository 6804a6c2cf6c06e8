/**
 * The InstanceAttestor: verifies a signed instance document with its cloud's verifier against the
 * loaded trust material, checks it has not been used (read-only, so a refused enrollment stores
 * nothing), and, once the enrollment is committed to, consumes it: the Azure nonce for good, the
 * AWS launch or GCP token mark with an undo for a rollback. Enrollment (enroll/enroll.ts) then
 * matches the instance it names against the inventory.
 */
import type { EnrollNonce, InstanceAttestation } from "@weft/protocol";
import { RecordStore } from "../store/kv.js";
import { verifyAwsAttestation } from "./aws.js";
import { verifyAzureAttestation } from "./azure.js";
import type { InstanceIdentityConfig, SourceAddressRule } from "./config.js";
import { verifyGcpAttestation } from "./gcp.js";
import { AttestationMark, AttestationMarks } from "./marks.js";
import { EnrollNonces, NonceRecord } from "./nonces.js";
import { loadTrust, type TrustMaterial } from "./trust.js";
import type { AttestedInstance } from "./types.js";

export interface InstanceAttestorOptions {
  trust: TrustMaterial;
  nonces: EnrollNonces;
  marks: AttestationMarks;
  sourceAddress: SourceAddressRule;
  /** Test seam. */
  now?: () => Date;
}

export class InstanceAttestor {
  readonly sourceAddress: SourceAddressRule;
  private readonly now: () => Date;

  constructor(private readonly o: InstanceAttestorOptions) {
    this.sourceAddress = o.sourceAddress;
    this.now = o.now ?? (() => new Date());
  }

  /** A nonce for an Azure agent's attested document (unauthenticated). */
  issueNonce(): Promise<EnrollNonce> {
    return this.o.nonces.issue();
  }

  /**
   * Verifies `att` and checks it is unused; throws AttestationRejectedError (403 instance_rejected)
   * with the reason. Writes nothing.
   */
  async verify(att: InstanceAttestation): Promise<AttestedInstance> {
    const now = this.now();
    const attested =
      att.provider === "aws"
        ? await verifyAwsAttestation(att, this.o.trust.aws, now)
        : att.provider === "azure"
          ? await verifyAzureAttestation(att, this.o.trust.azure, now)
          : await verifyGcpAttestation(att, this.o.trust.gcp, now);
    if (attested.replay.kind === "nonce") await this.o.nonces.check(attested.replay.nonce);
    else await this.o.marks.check(attested);
    return attested;
  }

  /**
   * Uses up `attested`'s document for `nodeId` (compare-and-set: of two enrollments with one
   * document, one gets here). Resolves to the undo for a rollback; a nonce stays used.
   */
  async consume(attested: AttestedInstance, nodeId: string): Promise<() => Promise<void>> {
    if (attested.replay.kind === "nonce") {
      await this.o.nonces.consume(attested.replay.nonce, nodeId);
      return async () => {};
    }
    return this.o.marks.mark(attested, nodeId);
  }
}

/** The attestor over its two buckets (`weft-enroll-nonces`, `weft-attestations`), with `config`'s trust material loaded. */
export async function openInstanceAttestor(stores: { enrollNonces: RecordStore<typeof NonceRecord>; attestations: RecordStore<typeof AttestationMark> }, config: InstanceIdentityConfig): Promise<InstanceAttestor> {
  const trust = await loadTrust(config);
  return new InstanceAttestor({
    trust,
    sourceAddress: config.sourceAddress,
    nonces: new EnrollNonces(stores.enrollNonces, config.azure.nonceTtlSeconds),
    marks: new AttestationMarks(stores.attestations),
  });
}
