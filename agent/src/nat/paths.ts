/**
 * Path decisions for peers behind NAT (pure). A peer needs traversal when both this node and the
 * peer lack a public endpoint and sit in different sites; for such a peer this node sends WireGuard
 * to one of:
 *   - the relay the controller assigned (this side's port on the relay node): the starting path,
 *     and the fallback;
 *   - nothing while a punching round probes a candidate (one of the peer's reflexive endpoints):
 *     the probe alone points WireGuard at it, so no re-apply can put the candidate back after
 *     WireGuard roamed away from it (which would make a relayed answer look direct);
 *   - the candidate that answered, once a probe proved it both ways (`direct`).
 * Punching needs both NATs to keep one mapping for every destination: when either side's NAT maps
 * per destination, its reflexive endpoints say nothing about the port the other side would meet,
 * so there is nothing to probe and the pair stays relayed.
 * Every other peer's endpoint is desiredPeers' (private in the site, public across, none for a NAT'd
 * peer that reaches us). What is reported (heartbeats, status) is read off WireGuard itself: the
 * relay when WireGuard sends to the relay's address, direct otherwise, none without a live session.
 */
import { parseEndpoint, type PeerPathKind, type PeerPathPlan, type PeerRecord } from "@weft/protocol";
import type { ActualPeer } from "../wireguard/index.js";
import type { Self } from "../peers/desired.js";

/** A session this old or older is gone (WireGuard's reject-after time). */
export const SESSION_MAX_AGE_MS = 180_000;

export type PathMode = "relay" | "probing" | "direct";

export interface TraversalState {
  mode: PathMode;
  /** The endpoint a running probe tries. */
  candidate?: string;
  /** The endpoint a probe proved. */
  direct?: string;
  /** The highest punching round acted on. */
  round: number;
  /** Direct-path pings missed in a row. */
  missed: number;
}

export function isTraversalPeer(self: Pick<Self, "site" | "behindNat">, peer: Pick<PeerRecord, "site" | "endpoints">): boolean {
  return self.behindNat && peer.site !== self.site && peer.endpoints.public === undefined;
}

/**
 * What a punching round can try for a peer: its reflexive endpoints (IPv4 ip:port), `none` when a
 * side's NAT maps per destination (nothing can work), `wait` when the peer's record does not name
 * any yet (the round came before the record: try when it does).
 */
export function candidatesOf(peer: Pick<PeerRecord, "endpoints">, self: Pick<PeerRecord, "endpoints"> | undefined): string[] | "none" | "wait" {
  if (peer.endpoints.mapping === "endpoint-dependent" || self?.endpoints.mapping === "endpoint-dependent") return "none";
  const list = (peer.endpoints.reflexive ?? []).filter((e) => parseEndpoint(e) !== undefined);
  return list.length > 0 ? list : "wait";
}

/**
 * Where WireGuard should send a traversal peer's packets, or undefined to leave WireGuard's
 * endpoint alone (desiredPeers then sets none: while probing, and with no relay).
 */
export function traversalEndpoint(state: TraversalState, plan: PeerPathPlan | undefined): string | undefined {
  if (state.mode === "probing") return undefined;
  if (state.mode === "direct" && state.direct) return state.direct;
  return plan?.relay?.endpoint;
}

/** The path WireGuard uses to a peer now, as heartbeats and `weft status` report it. */
export function reportedPath(actual: Pick<ActualPeer, "endpoint" | "latestHandshake"> | undefined, plan: PeerPathPlan | undefined, nowMs: number): { path: PeerPathKind; via?: string } {
  if (!actual?.endpoint || !actual.latestHandshake || nowMs - actual.latestHandshake.getTime() >= SESSION_MAX_AGE_MS) return { path: "none" };
  if (plan?.relay && actual.endpoint === plan.relay.endpoint) return { path: "relay", via: plan.relay.node };
  return { path: "direct" };
}

/** A punching round to act on: newer than the last one acted on. */
export function newRound(state: Pick<TraversalState, "round">, plan: PeerPathPlan | undefined): number | undefined {
  const round = plan?.round ?? 0;
  return round > state.round ? round : undefined;
}
