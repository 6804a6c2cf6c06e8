/**
 * What WireGuard shows of each peer, named and classified for the metrics (pure): the peer's
 * name and site from its peer record, the seconds since its last handshake, bytes each way, and
 * the path its endpoint says the tunnel takes: `private` (the peer's same-site address), `public`
 * (its advertised public address), `nat` (an address WireGuard learned from the peer's packets,
 * i.e. a NAT in between), `none` (no endpoint yet).
 */
import type { PeerRecord } from "@weft/protocol";
import type { ActualPeer } from "../wireguard/index.js";

export type PeerPath = "private" | "public" | "nat" | "none";

export interface PeerStat {
  peer: string;
  site: string;
  path: PeerPath;
  /** Seconds since the last handshake; undefined when there was none. */
  handshakeAgeSeconds: number | undefined;
  rxBytes: number;
  txBytes: number;
}

export function peerPath(endpoint: string | undefined, record: Pick<PeerRecord, "endpoints"> | undefined): PeerPath {
  if (!endpoint) return "none";
  if (record?.endpoints.private === endpoint) return "private";
  if (record?.endpoints.public === endpoint) return "public";
  return "nat";
}

export function peerStats(actual: readonly ActualPeer[], records: readonly PeerRecord[], now: Date): PeerStat[] {
  const byKey = new Map(records.map((r) => [r.wireguardPublicKey, r]));
  return actual.map((p) => {
    const r = byKey.get(p.publicKey);
    return {
      peer: r?.name ?? `key:${p.publicKey.slice(0, 8)}`,
      site: r?.site ?? "unknown",
      path: peerPath(p.endpoint, r),
      handshakeAgeSeconds: p.latestHandshake ? Math.max(0, (now.getTime() - p.latestHandshake.getTime()) / 1000) : undefined,
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
    };
  });
}
