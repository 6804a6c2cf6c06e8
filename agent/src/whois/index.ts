/**
 * WhoIs: an overlay address (with or without a port) → the node, the workload, the SPIFFE ID and
 * identity number the datapath gives it, the site, the cloud and the node's published labels —
 * answered from the peer records this agent last applied, so it works with the controller away and
 * costs no request. `GET /v1/whois?addr=<ip[:port]>` on the local API; `weft whois` prints it.
 *
 * Labels are what a peer record publishes: the node's labels without cloud tags and account or
 * instance ids (those stay in the controller's node record). A workload is shown with its node's
 * labels, site and cloud (a workload has no labels of its own).
 */
import { parseIpv4, type PeerRecord, type WhoIs } from "@weft/protocol";
import { LocalApiError } from "../localapi/index.js";
import type { AgentState } from "../state/store.js";

/** `100.64.0.7`, `100.64.0.7:8080` → address and port; undefined when it is neither. */
export function parseWhoisAddress(input: string): { address: string; port?: number } | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(input.trim());
  if (!m?.[1] || parseIpv4(m[1]) === undefined) return undefined;
  if (m[2] === undefined) return { address: m[1] };
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { address: m[1], port } : undefined;
}

/** Who holds `address` among `peers` (pure); undefined when no node or workload does. */
export function whois(peers: readonly PeerRecord[], address: string, port?: number): WhoIs | undefined {
  for (const p of peers) {
    const base = {
      address,
      ...(port === undefined ? {} : { port }),
      node: { id: p.nodeId, name: p.name, overlayAddress: p.overlayAddress },
      site: p.site,
      ...(p.cloud ? { cloud: p.cloud } : {}),
      labels: p.labels ?? {},
    };
    if (p.overlayAddress === address) return { ...base, ...(p.identity ? { spiffeId: p.identity.spiffeId, identity: p.identity.id } : {}) };
    const w = p.workloads?.find((x) => x.address === address);
    if (w) return { ...base, workload: w.name, spiffeId: w.identity.spiffeId, identity: w.identity.id };
  }
  return undefined;
}

/** The local API route: `addr` from the query; 400 for a bad one, 404 for an unknown one. */
export async function whoisRoute(state: AgentState, query: URLSearchParams): Promise<WhoIs> {
  const raw = query.get("addr") ?? "";
  const parsed = parseWhoisAddress(raw);
  if (!parsed) throw new LocalApiError(400, "invalid_address", `addr ${JSON.stringify(raw.slice(0, 64))}: want an IPv4 address, optionally with :port (e.g. 100.64.0.7:8080)`);
  const found = whois(state.applied?.peers ?? [], parsed.address, parsed.port);
  if (!found) throw new LocalApiError(404, "not_found", `no node or workload of the overlay has ${parsed.address} (as of the peers this agent last applied)`);
  return found;
}
