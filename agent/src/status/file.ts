/** The agent's live status, written to `<stateDir>/status.json` for `weft status`. */
import { join } from "node:path";
import type { PeerPathStatus } from "../nat/manager.js";
import type { RelayStatus } from "../relay/server.js";
import { writeFileAtomic } from "../state/store.js";

export interface AgentStatus {
  nodeId: string;
  /** The WireGuard interface the agent manages. */
  interface: string;
  /** "closed": the server refused this node for good (revoked credentials). */
  nats: "connecting" | "connected" | "disconnected" | "closed" | "stopped";
  /** True while the applied config may be behind the controller's. */
  stale: boolean;
  appliedRevision: number;
  peers: number;
  /** Where the eBPF maps are pinned (`weft flows` reads the counters there); absent without a datapath. */
  pinDir?: string;
  /** Revision of the node policy applied (-1: none read yet) and its entry count. */
  policyRevision: number;
  policyEntries: number;
  /** Revision of the node services record applied (-1: none read yet), the services in it, and when it was applied. */
  servicesRevision?: number;
  services?: number;
  servicesAppliedAt?: string;
  /** True when the controller no longer lists this node (it was deleted). */
  removed?: boolean;
  /** Site networks routed into the overlay, by gateway name; and those refused, with the reason. */
  siteRoutes?: { cidr: string; gateway: string }[];
  refusedSiteRoutes?: { cidr: string; gateway: string; reason: string }[];
  /** Site networks this node forwards to as its site's gateway. */
  gatewayFor?: string[];
  lastSyncAt?: string;
  /**
   * The path to each peer (direct, relay via a relay node, none), the endpoint WireGuard sends to
   * and the round-trip time through the tunnel; the same `path`, `via` and `rttMs` go into every
   * heartbeat's peers (PeerHandshake), which the controller shows per node.
   */
  paths?: PeerPathStatus[];
  /** On a relay node: its sessions and what it forwarded. */
  relay?: RelayStatus;
  /** The WireGuard interface's MTU (from the underlay when interface.mtu is auto). */
  mtu?: number;
  updatedAt: string;
}

export const STATUS_FILE = "status.json";

export async function writeStatus(dir: string, status: AgentStatus): Promise<void> {
  await writeFileAtomic(join(dir, STATUS_FILE), `${JSON.stringify(status, null, 2)}\n`);
}
