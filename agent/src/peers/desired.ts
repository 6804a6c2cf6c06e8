/**
 * From peer records to desired WireGuard peers. Pure: same input, same output.
 * - same site: the peer's private endpoint (falling back to public);
 * - other sites: the peer's public endpoint, or none when it is behind NAT
 *   (it reaches us, and WireGuard learns its address from the handshake);
 * - a node behind NAT keeps every tunnel open with persistent keepalive;
 * - a gateway's accepted site routes (site-routes.ts) are allowed IPs of that peer too;
 * - a peer that needs NAT traversal (both behind NAT, different sites) gets the endpoint the path
 *   manager chose (its relay, a probe candidate, a punched path: nat/paths.ts), when it chose one.
 * `tunnelEndpoints` lists the addresses those tunnels are sent to (no site route may cover one).
 */
import { parseEndpoint, type PeerRecord } from "@weft/protocol";
import type { DesiredPeer } from "../wireguard/index.js";

export interface Self {
  nodeId: string;
  site: string;
  /** True when this node has no public endpoint. */
  behindNat: boolean;
  keepaliveSeconds: number;
}

export function desiredPeers(
  self: Self,
  peers: Iterable<PeerRecord>,
  siteRoutes: ReadonlyMap<string, readonly string[]> = new Map(),
  /** Endpoints chosen by the path manager, by node id. */
  paths: ReadonlyMap<string, string> = new Map(),
): DesiredPeer[] {
  const out: DesiredPeer[] = [];
  for (const p of peers) {
    if (p.nodeId === self.nodeId) continue;
    const endpoint = p.site === self.site ? (p.endpoints.private ?? p.endpoints.public) : (p.endpoints.public ?? paths.get(p.nodeId));
    out.push({
      publicKey: p.wireguardPublicKey,
      ...(endpoint === undefined ? {} : { endpoint }),
      allowedIps: [...p.allowedIps, ...(siteRoutes.get(p.nodeId) ?? [])],
      ...(self.behindNat ? { persistentKeepalive: self.keepaliveSeconds } : {}),
    });
  }
  return out.sort((a, b) => a.publicKey.localeCompare(b.publicKey));
}

/** The endpoint addresses this node sends tunnels to, with each peer's name: a site route over one would loop. */
export function tunnelEndpoints(self: Self, peers: Iterable<PeerRecord>): { address: string; peer: string }[] {
  const list = [...peers];
  const names = new Map(list.map((r) => [r.wireguardPublicKey, r.name]));
  return desiredPeers(self, list).flatMap((p) => {
    const address = p.endpoint === undefined ? undefined : parseEndpoint(p.endpoint)?.host;
    return address === undefined ? [] : [{ address, peer: names.get(p.publicKey) ?? p.publicKey }];
  });
}
