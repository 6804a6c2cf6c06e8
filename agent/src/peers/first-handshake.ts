/**
 * First handshakes. A node's first handshake initiation to a peer is lost whenever the peer has
 * not added this node yet (agents that start together add each other within a second or two of
 * one another). wireguard-go then waits REKEY_TIMEOUT (5 s) before it initiates again, and further
 * packets do not make it initiate sooner. Behind NAT a node opens every tunnel itself, so every
 * such loss costs 5 s. A public node loses one only when its peer started at the same moment: each
 * one's initiation arrives before the other has added it, both are dropped, and both wait — in the
 * overlay benchmark's start of 7 agents at once, one pair in one round of 18 (its two hosts at
 * 7.3 s, the others at 2.4–2.5 s). So after the peers are applied the agent looks again after
 * each pause of FIRST_HANDSHAKE_RETRY_MS: the peers it opens tunnels to (those with an endpoint)
 * still without a handshake are re-added (a fresh peer initiates on the next packet) and warmed up
 * again. Past the last attempt WireGuard's own retries take over. The pauses start short (the
 * peers that were only a moment late are caught at once) and grow, so that a handshake whose
 * answer takes longer than the first pause (a distant peer) is not cut off by every re-add.
 */
import type { ActualPeer } from "../wireguard/index.js";

/** The pause before each look at the first handshakes (ms): five looks, 3.75 s in all. */
export const FIRST_HANDSHAKE_RETRY_MS: readonly number[] = [250, 500, 1000, 1000, 1000];

/** Public keys of `wanted` peers that have no handshake yet on the device (pure). */
export function withoutHandshake(wanted: readonly string[], actual: readonly ActualPeer[]): string[] {
  const done = new Set(actual.filter((p) => p.latestHandshake !== undefined && p.latestHandshake.getTime() > 0).map((p) => p.publicKey));
  return wanted.filter((k) => !done.has(k));
}
