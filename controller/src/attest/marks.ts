/**
 * Signed documents already used, in the `weft-attestations` KV bucket: one record per instance
 * (`<provider>.<account>.<id>`) holding the marker of the last document that enrolled it (an AWS
 * launch's `pendingTime`, a GCP token's `iat`, in ms). A document is accepted only with a larger
 * marker, so a document that enrolled once (or any older one) never enrolls again, on any
 * replica: writes are compare-and-set. An enrollment that fails after marking puts the record back.
 */
import { z } from "zod";
import { kvToken } from "../inventory/store.js";
import type { RecordStore, Versioned } from "../store/kv.js";
import { AttestationRejectedError } from "./errors.js";
import type { AttestedInstance } from "./types.js";

export const AttestationMark = z.object({
  /** ms since the epoch: AWS pendingTime, GCP iat. */
  marker: z.number(),
  /** What it was, for messages: "launch 2026-…", "token issued 2026-…". */
  label: z.string(),
  nodeId: z.string(),
  at: z.string(),
});
export type AttestationMark = z.infer<typeof AttestationMark>;

export function markKey(i: Pick<AttestedInstance, "provider" | "account" | "id">): string {
  return `${i.provider}.${kvToken(i.account)}.${kvToken(i.id)}`;
}

function describe(i: AttestedInstance): string {
  return `instance ${i.id} (${i.provider}, account ${i.account})`;
}

export class AttestationMarks {
  constructor(private readonly store: RecordStore<typeof AttestationMark>) {}

  /** Throws `replayed` when `i`'s document is not newer than the last one that enrolled it. Reads only. */
  async check(i: AttestedInstance): Promise<void> {
    this.fresh(i, await this.store.get(markKey(i)));
  }

  /**
   * Records `i`'s document as used by `nodeId` (compare-and-set) and returns the undo, which puts
   * back what was there.
   */
  async mark(i: AttestedInstance, nodeId: string): Promise<() => Promise<void>> {
    if (i.replay.kind === "nonce") throw new Error("marks: a nonce-guarded document has no mark");
    const key = markKey(i);
    const cur = await this.store.get(key);
    this.fresh(i, cur);
    const next: AttestationMark = { marker: i.replay.marker, label: i.replay.label, nodeId, at: new Date().toISOString() };
    const revision = cur ? await this.store.update(key, next, cur.revision) : await this.store.create(key, next);
    if (revision === false) throw new AttestationRejectedError("replayed", `${describe(i)}: its document was just used by another enrollment`);
    return async () => {
      if (cur) await this.store.update(key, cur.value, revision);
      else await this.store.kv.delete(key, { previousSeq: revision });
    };
  }

  private fresh(i: AttestedInstance, cur: Versioned<AttestationMark> | undefined): void {
    if (i.replay.kind === "nonce" || !cur || cur.value.marker < i.replay.marker) return;
    const same = cur.value.marker === i.replay.marker;
    const advice =
      i.provider === "aws"
        ? "an AWS identity document enrolls once per launch: stop and start the instance for a new one, or enroll it with a join key and no instance identity"
        : "read a fresh identity token";
    throw new AttestationRejectedError(
      "replayed",
      `${describe(i)}: ${same ? "this" : "an older"} ${i.replay.label} was already used to enroll node ${cur.value.nodeId} (${cur.value.label}); ${advice}`,
    );
  }
}
