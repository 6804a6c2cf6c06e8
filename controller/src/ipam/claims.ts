/**
 * Uniqueness claims in the ipam bucket: one key per overlay address, workload
 * prefix, WireGuard public key and node name, each created with compare-and-set
 * so two enrollments can never own the same one.
 */
import { z } from "zod";
import type { RecordStore } from "../store/kv.js";

export const Claim = z.object({ nodeId: z.string(), claimedAt: z.string() });
export type Claim = z.infer<typeof Claim>;
export type ClaimStore = RecordStore<typeof Claim>;

export type ClaimKind = "addr" | "wprefix" | "wgkey" | "name";

export function claimKey(kind: ClaimKind, value: string): string {
  switch (kind) {
    case "addr":
      return `addr.${value}`;
    case "wprefix":
      // 100.80.3.0/24 → wprefix.100.80.3.0_24 ('/' would be a key separator for some tools)
      return `wprefix.${value.replace("/", "_")}`;
    case "wgkey":
      return `wgkey.${Buffer.from(value, "base64").toString("hex")}`;
    case "name":
      return `name.${value}`;
  }
}

export class Claims {
  constructor(private readonly store: ClaimStore) {}

  /** Claim `value` for `nodeId`; returns the current owner's id when already taken. */
  async claim(kind: ClaimKind, value: string, nodeId: string): Promise<{ ok: true } | { ok: false; owner: string }> {
    const key = claimKey(kind, value);
    const created = await this.store.create(key, { nodeId, claimedAt: new Date().toISOString() });
    if (created !== false) return { ok: true };
    const owner = await this.store.get(key);
    return { ok: false, owner: owner?.value.nodeId ?? "another node" };
  }

  async owner(kind: ClaimKind, value: string): Promise<string | undefined> {
    return (await this.store.get(claimKey(kind, value)))?.value.nodeId;
  }

  /** Release a claim, but only if `nodeId` still owns it. */
  async release(kind: ClaimKind, value: string, nodeId: string): Promise<void> {
    const key = claimKey(kind, value);
    const got = await this.store.get(key);
    if (got?.value.nodeId === nodeId) await this.store.delete(key);
  }

  /** Claimed workload prefixes (`a.b.c.d/len`). */
  async claimedPrefixes(): Promise<string[]> {
    const keys = await this.store.keys("wprefix.>");
    return keys.map((k) => k.slice("wprefix.".length).replace("_", "/"));
  }

  async claimedAddresses(): Promise<Set<string>> {
    const keys = await this.store.keys("addr.>");
    return new Set(keys.map((k) => k.slice("addr.".length)));
  }
}
