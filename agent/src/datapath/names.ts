/**
 * Identity numbers → names, for `weft flows` and the metrics: reserved ids by their name, the
 * others by the SPIFFE ID in the peer records (nodes and their workloads).
 */
import { ReservedIdentities, type PeerRecord } from "@weft/protocol";

export type IdentityNames = Map<number, string>;

export function identityNames(peers: Iterable<PeerRecord>): IdentityNames {
  const out: IdentityNames = new Map(Object.entries(ReservedIdentities).map(([name, id]) => [id, `reserved:${name}`]));
  for (const p of peers) {
    if (p.identity) out.set(p.identity.id, p.identity.spiffeId);
    for (const w of p.workloads ?? []) out.set(w.identity.id, w.identity.spiffeId);
  }
  return out;
}

export function nameOf(names: IdentityNames, id: number): string {
  return names.get(id) ?? `identity:${id}`;
}
