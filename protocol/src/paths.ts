/**
 * Paths between nodes behind NAT: the per-node plan the controller's path coordinator writes
 * (KV `weft-node-paths`, one key per node, readable only by that node) and the constants agents
 * and controller share. The data path stays WireGuard end to end: a relay forwards UDP datagrams
 * it cannot decrypt between two ports, one per side.
 *
 * How a pair of nodes that are both behind NAT (in different sites) gets connected:
 *   1. the controller gives the pair a relay session at once (a relay node, two ports): each side
 *      sends its WireGuard packets to its own port of the relay, which forwards them out of the
 *      other port to the address it learned for the other side;
 *   2. the controller starts a hole-punching round (`round` increases in both nodes' keys at the
 *      same moment): each side points WireGuard at the other's reflexive endpoint and probes
 *      through the tunnel; a side that hears the other over that address keeps the direct path,
 *      else it goes back to the relay;
 *   3. rounds repeat with backoff while the pair is relayed, and at once when a side's candidates
 *      (reflexive endpoints, NAT mapping) change.
 */
import { z } from "zod";
import { endpoint, nodeId, nodeName } from "./messages.js";

/** Node label (or cloud tag `weft:relay`) making a node with a public endpoint a relay for pairs behind NAT. */
export const RELAY_LABEL = "weft:relay";

/** UDP port of the agents' path probe (a echo between overlay addresses, through the tunnel). */
export const PATH_PROBE_PORT = 51821;

const port = z.number().int().min(1).max(65535);

/** The relay a node sends one peer's traffic through: the relay node and this side's port on it. */
export const RelayAssignment = z.object({
  node: nodeId,
  name: nodeName,
  /** The relay's public address and this side's port. */
  endpoint,
});
export type RelayAssignment = z.infer<typeof RelayAssignment>;

/** What a node does about one peer it cannot reach directly by construction (both behind NAT). */
export const PeerPathPlan = z.object({
  peer: nodeId,
  relay: RelayAssignment.optional(),
  /** Hole-punching round: when it increases, probe the peer's reflexive endpoints now (the peer does too). */
  round: z.number().int().nonnegative().optional(),
});
export type PeerPathPlan = z.infer<typeof PeerPathPlan>;

/** One relayed pair on a relay node: `nodes[i]` sends to `ports[i]`, and hears the other from it. */
export const RelaySession = z.object({
  id: z.string().regex(/^[a-z0-9-]{1,80}$/, "must be lowercase letters, digits and '-'"),
  ports: z.tuple([port, port]),
  nodes: z.tuple([nodeId, nodeId]),
});
export type RelaySession = z.infer<typeof RelaySession>;

export const NodePathsRecord = z.object({
  version: z.literal(1),
  nodeId,
  peers: z.array(PeerPathPlan).max(4096),
  /** On a relay node: the sessions it forwards. */
  relaySessions: z.array(RelaySession).max(8192).optional(),
  updatedAt: z.string(),
});
export type NodePathsRecord = z.infer<typeof NodePathsRecord>;
