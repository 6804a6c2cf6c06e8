/**
 * Remembered endpoints: where the peers this node has no endpoint for (nodes behind NAT in other
 * sites) last reached it from. WireGuard learns such a peer's address from its handshakes; a new
 * interface (a reboot, or a crash that took the device) starts without it, and the peer keeps
 * sending on a session the new interface does not know until it hears of this node's new session
 * epoch through the controller (peers/epochs.ts) — or, with the control plane down, until
 * WireGuard's own timers give up on that session (15 s after data goes unanswered, up to three
 * minutes for keepalives alone). So the agent keeps the last such address of each of those peers
 * (learned while its handshake was recent) in its state, and a start from the cache adds them with
 * it: the start's warm-up then initiates a handshake through the NAT mapping the peer still keeps
 * open towards this node, and the peer's next packet uses the new session.
 *
 * Only on a public node (behind NAT, the path manager owns those peers' endpoints), and only for a
 * peer WireGuard has no endpoint for at that moment: one it learned since is newer.
 */
import { parseEndpoint } from "@weft/protocol";
import type { ActualPeer, DesiredPeer } from "../wireguard/index.js";

/** An endpoint is remembered only from a handshake at most this old (WireGuard renews sessions every 2 minutes). */
export const REMEMBER_HANDSHAKE_MAX_AGE_MS = 180_000;

export type RememberedEndpoints = Readonly<Record<string, string>>;

/**
 * The remembered endpoints after a look at the device (pure): for each peer in `unaddressed` (the
 * peers this node is given no endpoint for), the endpoint WireGuard has when its handshake is
 * recent, else what was remembered; peers no longer unaddressed are forgotten. Returns undefined
 * when nothing changed, so the caller writes only changes.
 */
export function rememberEndpoints(previous: RememberedEndpoints | undefined, actual: readonly ActualPeer[], unaddressed: ReadonlySet<string>, now: number): Record<string, string> | undefined {
  const before = previous ?? {};
  const next: Record<string, string> = {};
  for (const key of Object.keys(before)) if (unaddressed.has(key)) next[key] = before[key]!;
  for (const p of actual) {
    if (!unaddressed.has(p.publicKey) || p.endpoint === undefined || p.latestHandshake === undefined) continue;
    if (parseEndpoint(p.endpoint, { ipv6: true }) === undefined) continue;
    const age = now - p.latestHandshake.getTime();
    if (p.latestHandshake.getTime() > 0 && age <= REMEMBER_HANDSHAKE_MAX_AGE_MS) next[p.publicKey] = p.endpoint;
  }
  const keys = Object.keys(next);
  const same = keys.length === Object.keys(before).length && keys.every((k) => before[k] === next[k]);
  return same ? undefined : next;
}

/**
 * `desired` with the remembered endpoint given to each peer that has none, when WireGuard has none
 * for it either (pure). Returns the peers given one, by public key, beside the list.
 */
export function withRememberedEndpoints(desired: readonly DesiredPeer[], actual: readonly ActualPeer[], remembered: RememberedEndpoints): { peers: DesiredPeer[]; given: string[] } {
  const known = new Set(actual.filter((p) => p.endpoint !== undefined).map((p) => p.publicKey));
  const given: string[] = [];
  const peers = desired.map((p) => {
    const endpoint = remembered[p.publicKey];
    if (p.endpoint !== undefined || endpoint === undefined || known.has(p.publicKey)) return p;
    given.push(p.publicKey);
    return { ...p, endpoint };
  });
  return { peers, given };
}
