/**
 * First handshakes from behind NAT. A node behind NAT opens every tunnel itself, and at start its
 * first handshake initiation is lost whenever the peer has not added this node yet (agents that
 * start together add each other within a second or two of one another). wireguard-go then waits
 * REKEY_TIMEOUT (5 s) before it initiates again, and further packets do not make it initiate
 * sooner. So after the peers are applied the agent looks again after each pause of
 * FIRST_HANDSHAKE_RETRY_MS: the peers still without a handshake are re-added (a fresh peer
 * initiates on the next packet) and warmed up again. Past the last attempt WireGuard's own retries
 * take over. The pauses start short (the peers that were only a moment late are caught at once)
 * and grow, so that a handshake whose answer takes longer than the first pause (a distant peer) is
 * not cut off by every re-add.
 */
import type { ActualPeer } from "../wireguard/index.js";

/** The pause before each look at the first handshakes (ms): five looks, 3.75 s in all. */
export const FIRST_HANDSHAKE_RETRY_MS: readonly number[] = [250, 500, 1000, 1000, 1000];

/** Public keys of `wanted` peers that have no handshake yet on the device (pure). */
export function withoutHandshake(wanted: readonly string[], actual: readonly ActualPeer[]): string[] {
  const done = new Set(actual.filter((p) => p.latestHandshake !== undefined && p.latestHandshake.getTime() > 0).map((p) => p.publicKey));
  return wanted.filter((k) => !done.has(k));
}
