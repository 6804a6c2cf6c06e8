/**
 * The node registry: full node records (controller-only bucket) and the public
 * peer records every agent watches (one key per node, so a change costs one
 * message per watcher). Deleting a node first revokes its NATS credential (the
 * server disconnects it and refuses it from then on), then removes its peer
 * record, so agents drop it from WireGuard before anything else is cleaned up.
 */
import { NODE_ID_PATTERN, NodeRecord, NodeView, PeerRecord, nodeName, type SameSiteTransport } from "@weft/protocol";
import type { Logger } from "pino";
import { NotFoundError } from "../errors.js";
import type { AddressAllocator } from "../ipam/allocator.js";
import type { Claims } from "../ipam/claims.js";
import type { PrefixAllocator } from "../ipam/prefixes.js";
import type { RecordStore } from "../store/kv.js";
import type { Liveness } from "./liveness.js";

export type NodeStore = RecordStore<typeof NodeRecord>;
export type PeerStore = RecordStore<typeof PeerRecord>;

/** Revoke a node's NATS user key. Throws only when the revocation was not recorded. */
export type RevokeCredential = (natsPublicKey: string) => Promise<unknown>;

/** How a node of `site` carries same-site workload traffic, given the sites that allow plaintext. */
export function transportOf(site: string, plaintextSites: readonly string[]): SameSiteTransport {
  return plaintextSites.includes(site) ? "vxlan" : "wireguard";
}

/** The public record of a node: allowed IPs = its /32 and its workload prefix. */
export function peerRecordOf(node: NodeRecord, transport: SameSiteTransport = "wireguard"): PeerRecord {
  return {
    version: 1,
    nodeId: node.nodeId,
    name: node.name,
    site: node.site,
    wireguardPublicKey: node.wireguardPublicKey,
    overlayAddress: node.overlayAddress,
    ...(node.identity ? { identity: node.identity } : {}),
    allowedIps: [`${node.overlayAddress}/32`, ...(node.workloadPrefix ? [node.workloadPrefix] : [])],
    endpoints: node.endpoints,
    ...(node.workloadPrefix ? { workloadPrefix: node.workloadPrefix, workloads: [] } : {}),
    ...(transport === "vxlan" ? { sameSiteTransport: transport } : {}),
    updatedAt: new Date().toISOString(),
  };
}

export interface NodeRegistryOptions {
  nodes: NodeStore;
  peers: PeerStore;
  claims: Claims;
  allocator: AddressAllocator;
  prefixes: PrefixAllocator;
  liveness: Liveness;
  log: Logger;
  revokeCredential: RevokeCredential;
  /** overlay.plaintextSites: nodes of these sites say sameSiteTransport "vxlan". */
  plaintextSites: readonly string[];
}

/** Compare-and-set attempts before a peer record update gives up. */
const CAS_ATTEMPTS = 20;

export class NodeRegistry {
  private readonly nodes: NodeStore;
  private readonly peers: PeerStore;
  private readonly claims: Claims;
  private readonly allocator: AddressAllocator;
  private readonly prefixes: PrefixAllocator;
  private readonly liveness: Liveness;
  private readonly log: Logger;
  private readonly revokeCredential: RevokeCredential;
  private readonly plaintextSites: readonly string[];

  constructor(opts: NodeRegistryOptions) {
    this.nodes = opts.nodes;
    this.peers = opts.peers;
    this.claims = opts.claims;
    this.allocator = opts.allocator;
    this.prefixes = opts.prefixes;
    this.liveness = opts.liveness;
    this.log = opts.log;
    this.revokeCredential = opts.revokeCredential;
    this.plaintextSites = opts.plaintextSites;
  }

  /** Write a freshly enrolled node: its full record, then its public peer record. */
  async add(node: NodeRecord): Promise<void> {
    await this.nodes.put(node.nodeId, node);
    try {
      await this.peers.put(node.nodeId, peerRecordOf(node, transportOf(node.site, this.plaintextSites)));
    } catch (err) {
      // No half-enrolled node: without its peer record nobody could reach it.
      await this.nodes.delete(node.nodeId).catch((cleanupErr: unknown) => this.log.error({ node: node.nodeId, err: cleanupErr }, "cannot remove half-written node record"));
      throw err;
    }
  }

  /**
   * Copy a node's interface epoch (reported in its heartbeats) into its peer
   * record, so peers behind NAT re-handshake with it. A no-op when unchanged or
   * when the node no longer exists. Compare-and-set, retried on a lost race.
   */
  async setSessionEpoch(nodeId: string, epoch: string): Promise<"updated" | "unchanged" | "gone"> {
    const got = await this.updatePeer(nodeId, (peer) => (peer.sessionEpoch === epoch ? undefined : { ...peer, sessionEpoch: epoch }));
    if (got === "updated") this.log.info({ node: nodeId, epoch }, "node's WireGuard interface was recreated; peers will re-handshake");
    return got;
  }

  /**
   * Change a node's peer record with compare-and-set, retried on a lost race:
   * `change` gets the current record and returns the next one (updatedAt is set
   * here), or undefined for no change. It may run several times; it may throw to abort.
   */
  async updatePeer(nodeId: string, change: (peer: PeerRecord) => PeerRecord | undefined | Promise<PeerRecord | undefined>): Promise<"updated" | "unchanged" | "gone"> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const got = await this.peers.get(nodeId);
      if (!got) return "gone";
      const next = await change(got.value);
      if (next === undefined) return "unchanged";
      if ((await this.peers.update(nodeId, { ...next, updatedAt: new Date().toISOString() }, got.revision)) !== false) return "updated";
    }
    throw new Error(`node ${nodeId}: peer record update kept losing races`);
  }

  /** Every peer record. */
  async peerRecords(): Promise<PeerRecord[]> {
    return (await this.peers.list(undefined, (key, err) => this.log.warn({ node: key, err }, "skipping unreadable peer record"))).map((r) => r.value);
  }

  /** The node's peer record and its revision, or undefined when the node has none. */
  async peer(nodeId: string): Promise<PeerRecord | undefined> {
    return NODE_ID_PATTERN.test(nodeId) ? (await this.peers.get(nodeId))?.value : undefined;
  }

  /**
   * The node's workload prefix, allocated now for a node enrolled before workload
   * prefixes existed: claimed (compare-and-set), then written to the node record
   * (compare-and-set; a lost race gives the claim back and uses the winner's), then
   * to the peer record (prefix and allowed IPs). Throws NotFoundError for an unknown node.
   */
  async ensureWorkloadPrefix(nodeId: string): Promise<string> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const node = NODE_ID_PATTERN.test(nodeId) ? await this.nodes.get(nodeId) : undefined;
      if (!node) throw new NotFoundError(`node ${nodeId} does not exist`);
      let prefix = node.value.workloadPrefix;
      if (prefix === undefined) {
        const claimed = await this.prefixes.allocate(nodeId);
        if ((await this.nodes.update(nodeId, { ...node.value, workloadPrefix: claimed }, node.revision)) === false) {
          await this.prefixes.release(nodeId, claimed);
          continue;
        }
        prefix = claimed;
        this.log.info({ node: nodeId, workloadPrefix: prefix }, "allocated a workload prefix for a node enrolled without one");
      }
      const p = prefix;
      await this.updatePeer(nodeId, (peer) =>
        peer.workloadPrefix === p && peer.allowedIps.includes(p)
          ? undefined
          : { ...peer, workloadPrefix: p, workloads: peer.workloadPrefix === p ? (peer.workloads ?? []) : [], allowedIps: [...new Set([...peer.allowedIps, p])] },
      );
      return p;
    }
    throw new Error(`node ${nodeId}: workload prefix allocation kept losing races`);
  }

  /**
   * Bring every peer record's sameSiteTransport in line with overlay.plaintextSites
   * (run at start, so a changed config reaches agents). Returns how many changed.
   */
  async syncSameSiteTransport(): Promise<number> {
    let changed = 0;
    for (const nodeId of await this.peers.keys()) {
      try {
        const got = await this.updatePeer(nodeId, (peer) => {
          const want = transportOf(peer.site, this.plaintextSites);
          if ((peer.sameSiteTransport ?? "wireguard") === want) return undefined;
          const { sameSiteTransport: _old, ...rest } = peer;
          return want === "vxlan" ? { ...rest, sameSiteTransport: want } : rest;
        });
        if (got === "updated") changed++;
      } catch (err) {
        this.log.warn({ node: nodeId, err }, "cannot update the node's same-site transport");
      }
    }
    if (changed > 0) this.log.info({ nodes: changed, plaintextSites: this.plaintextSites }, "same-site transport of nodes changed with overlay.plaintextSites");
    return changed;
  }

  async get(nodeId: string): Promise<NodeView> {
    const got = NODE_ID_PATTERN.test(nodeId) ? await this.nodes.get(nodeId) : undefined;
    if (!got) throw new NotFoundError(`node ${nodeId} does not exist; list nodes with \`weft nodes list\``);
    return this.view(got.value);
  }

  async list(): Promise<NodeView[]> {
    const all = await this.nodes.list(undefined, (key, err) => this.log.warn({ node: key, err }, "skipping unreadable node record"));
    return all.map((r) => this.view(r.value)).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Find a node by id or by name. A name may look like an id (`n-web` is a valid
   * name), so an id that matches no node is tried as a name too.
   */
  async resolve(idOrName: string): Promise<NodeView> {
    const byId = NODE_ID_PATTERN.test(idOrName) ? await this.nodes.get(idOrName) : undefined;
    if (byId) return this.view(byId.value);
    // Not a node name: no claim can exist (and it may not be a valid KV key).
    const owner = nodeName.safeParse(idOrName).success ? await this.claims.owner("name", idOrName) : undefined;
    if (!owner) throw new NotFoundError(`no node has the id or name ${JSON.stringify(idOrName.slice(0, 64))}; list nodes with \`weft nodes list\``);
    return this.get(owner);
  }

  async delete(nodeId: string): Promise<NodeView> {
    const view = await this.get(nodeId);
    // Revoke first: if this fails nothing is deleted yet, so the delete can be retried.
    await this.revokeCredential(view.natsPublicKey);
    const peerPrefix = (await this.peers.get(nodeId).catch(() => undefined))?.value.workloadPrefix;
    await this.peers.delete(nodeId);
    await this.nodes.delete(nodeId);
    await this.allocator.release(nodeId, view.overlayAddress);
    for (const prefix of new Set([view.workloadPrefix, peerPrefix])) if (prefix) await this.prefixes.release(nodeId, prefix);
    await this.claims.release("wgkey", view.wireguardPublicKey, nodeId);
    await this.claims.release("name", view.name, nodeId);
    this.liveness.forget(nodeId);
    this.log.info({ node: nodeId, name: view.name }, "node deleted");
    return view;
  }

  private view(node: NodeRecord): NodeView {
    const live = this.liveness.get(node.nodeId);
    return NodeView.parse({
      ...node,
      status: this.liveness.status(node.nodeId),
      lastSeen: live?.lastSeen.toISOString(),
      appliedRevision: live?.heartbeat.appliedRevision,
      peers: live?.heartbeat.peers,
    });
  }
}
