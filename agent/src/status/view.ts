/**
 * What `weft status` shows (pure): this node from its state, its sync state from the status, and
 * each applied peer with what WireGuard shows of it now. The agent builds it for its local API
 * (`GET /v1/status/view`), which answers from memory; `weft status` builds it from the files when
 * no agent answers. Types only are imported, so a command that reads it over the socket loads
 * nothing else of the agent.
 */
import type { PeerPathStatus } from "../nat/manager.js";
import type { AgentState } from "../state/store.js";
import type { ActualPeer } from "../wireguard/dump.js";
import type { AgentStatus } from "./file.js";

export interface StatusViewPeer {
  name: string;
  site: string;
  overlayAddress: string;
  /** The path to the peer (direct, relay via a relay node, none) and its RTT, as the path manager reports it. */
  path: PeerPathStatus["path"] | undefined;
  /** The relay node's name, when the path is relayed. */
  via: string | undefined;
  rttMs: number | undefined;
  endpoint: string | undefined;
  /** Epoch seconds. */
  latestHandshake: number | undefined;
  rxBytes: number | undefined;
  txBytes: number | undefined;
}

export interface StatusView {
  nodeId: string;
  name: string;
  site: string;
  overlayAddress: string;
  controller: string;
  nats: string;
  stale: boolean;
  removed: boolean;
  appliedRevision: number;
  lastSyncAt: string | undefined;
  /** Services callable from this node, and the services record's revision. */
  services: number;
  servicesRevision: number | undefined;
  interface: string | undefined;
  peers: StatusViewPeer[];
}

export function statusView(state: AgentState, status: Pick<AgentStatus, "nats" | "stale" | "removed" | "lastSyncAt" | "interface" | "services" | "servicesRevision" | "paths"> | undefined, live: readonly ActualPeer[]): StatusView {
  const liveByKey = new Map(live.map((p) => [p.publicKey, p]));
  const pathOf = new Map((status?.paths ?? []).map((p) => [p.nodeId, p]));
  return {
    nodeId: state.nodeId,
    name: state.name,
    site: state.site,
    overlayAddress: state.overlayAddress,
    controller: state.controllerUrl,
    nats: status?.nats ?? "unknown",
    stale: status?.stale ?? true,
    removed: status?.removed ?? false,
    appliedRevision: state.applied?.revision ?? 0,
    lastSyncAt: status?.lastSyncAt,
    services: status?.services ?? state.appliedServices?.record?.services.length ?? 0,
    servicesRevision: status?.servicesRevision ?? state.appliedServices?.revision,
    interface: status?.interface,
    peers: (state.applied?.peers ?? [])
      .filter((p) => p.nodeId !== state.nodeId)
      .map((p) => {
        const wg = liveByKey.get(p.wireguardPublicKey);
        const path = pathOf.get(p.nodeId);
        return {
          name: p.name,
          site: p.site,
          overlayAddress: p.overlayAddress,
          path: path?.path,
          via: path?.via,
          rttMs: path?.rttMs,
          endpoint: wg?.endpoint,
          latestHandshake: wg?.latestHandshake ? Math.floor(wg.latestHandshake.getTime() / 1000) : undefined,
          rxBytes: wg?.rxBytes,
          txBytes: wg?.txBytes,
        };
      }),
  };
}

/** Whether an answer of the local API has the shape of a StatusView (the command prints it as such). */
export function isStatusView(v: unknown): v is StatusView {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.nodeId === "string" &&
    typeof o.name === "string" &&
    typeof o.site === "string" &&
    typeof o.overlayAddress === "string" &&
    typeof o.nats === "string" &&
    typeof o.stale === "boolean" &&
    typeof o.appliedRevision === "number" &&
    typeof o.services === "number" &&
    Array.isArray(o.peers) &&
    o.peers.every((p) => typeof p === "object" && p !== null && typeof (p as Record<string, unknown>).name === "string" && typeof (p as Record<string, unknown>).overlayAddress === "string")
  );
}
