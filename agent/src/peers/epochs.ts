/**
 * Session epochs: a random id an agent picks whenever its WireGuard interface
 * is created afresh. A node behind NAT cannot be reached first, so when a peer's
 * epoch changes (it rebooted and lost every session) the NAT'd node drops its
 * stale session with that peer and handshakes again at once, instead of waiting
 * for WireGuard's two-minute rekey.
 */
import { randomBytes } from "node:crypto";
import type { PeerRecord } from "@weft/protocol";

export function newSessionEpoch(): string {
  return randomBytes(8).toString("hex");
}

/** Public keys of peers whose epoch changed between two applied peer sets. */
export function renewedSessions(previous: readonly PeerRecord[] | undefined, next: readonly PeerRecord[]): Set<string> {
  const before = new Map((previous ?? []).map((p) => [p.nodeId, p]));
  const out = new Set<string>();
  for (const p of next) {
    const old = before.get(p.nodeId);
    if (old?.sessionEpoch && p.sessionEpoch && old.sessionEpoch !== p.sessionEpoch && old.wireguardPublicKey === p.wireguardPublicKey) {
      out.add(p.wireguardPublicKey);
    }
  }
  return out;
}
