/**
 * Enrollment nonces in the `weft-enroll-nonces` KV bucket: `azure.<nonce>` per nonce, created for
 * an unauthenticated caller (`POST /v1/enroll/nonce`) and consumed once by the enrollment whose
 * Azure attested document carries it. Every replica of the controller reads and writes the same
 * records with compare-and-set, so they agree on what was issued and used. The bucket's max age
 * and size (nats/connect.ts BUCKET_LIMITS) bound what strangers can make it keep; a record's own
 * `expiresAt` is the nonce's lifetime.
 */
import { randomInt } from "node:crypto";
import type { EnrollNonce } from "@weft/protocol";
import { z } from "zod";
import { StoreUnavailableError } from "../errors.js";
import type { RecordStore } from "../store/kv.js";
import { AttestationRejectedError } from "./errors.js";

export const NonceRecord = z.object({
  issuedAt: z.string(),
  expiresAt: z.string(),
  usedAt: z.string().optional(),
  usedBy: z.string().optional(),
});
export type NonceRecord = z.infer<typeof NonceRecord>;

const keyOf = (nonce: string) => `azure.${nonce}`;

/** Ten random decimal digits (Azure's documented nonce form): 10^10 values, drawn with the CSPRNG. */
export function newNonce(): string {
  return String(randomInt(0, 1e10)).padStart(10, "0");
}

export class EnrollNonces {
  constructor(
    private readonly store: RecordStore<typeof NonceRecord>,
    private readonly ttlSeconds: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A fresh nonce, stored unused until `expiresAt`. */
  async issue(): Promise<EnrollNonce> {
    const issuedAt = this.now();
    const expiresAt = new Date(issuedAt.getTime() + this.ttlSeconds * 1000).toISOString();
    for (let attempt = 0; attempt < 5; attempt++) {
      const nonce = newNonce();
      if ((await this.store.create(keyOf(nonce), { issuedAt: issuedAt.toISOString(), expiresAt })) !== false) return { nonce, expiresAt };
    }
    throw new StoreUnavailableError("enrollment nonces: five fresh nonces in a row were already taken; retry");
  }

  /** Throws unless `nonce` was issued here, has not expired and is unused. Reads only. */
  async check(nonce: string): Promise<void> {
    const got = await this.store.get(keyOf(nonce));
    this.usable(nonce, got?.value);
  }

  /** Marks `nonce` used by `nodeId` with compare-and-set: of two enrollments with one nonce, one wins. */
  async consume(nonce: string, nodeId: string): Promise<void> {
    const got = await this.store.get(keyOf(nonce));
    this.usable(nonce, got?.value);
    const used = { ...got!.value, usedAt: this.now().toISOString(), usedBy: nodeId };
    if ((await this.store.update(keyOf(nonce), used, got!.revision)) === false) {
      throw new AttestationRejectedError("replayed", `azure attested document: nonce ${nonce} was just used by another enrollment; a nonce is good for one`);
    }
  }

  private usable(nonce: string, rec: NonceRecord | undefined): asserts rec is NonceRecord {
    if (!rec) throw new AttestationRejectedError("unknown_nonce", `azure attested document: nonce ${nonce} was not issued by this controller, or expired long ago; ask POST /v1/enroll/nonce for a fresh one`);
    if (rec.usedAt !== undefined) throw new AttestationRejectedError("replayed", `azure attested document: nonce ${nonce} was already used (${rec.usedAt}); a nonce is good for one enrollment`);
    if (Date.parse(rec.expiresAt) <= this.now().getTime()) throw new AttestationRejectedError("unknown_nonce", `azure attested document: nonce ${nonce} expired at ${rec.expiresAt}; ask for a fresh one and enroll within its lifetime`);
  }
}
