/**
 * The node registry: full node records (controller-only bucket) and the public
 * peer records every agent watches (one key per node, so a change costs one
 * message per watcher). Deleting a node first revokes its NATS credential (the
 * server disconnects it and refuses it from then on), then removes its peer
 * record, so agents drop it from WireGuard before anything else is cleaned up.
 */
import { NODE_ID_PATTERN, NodeRecord, NodeView, PeerRecord, nodeName } from "@weft/protocol";
import type { Logger } from "pino";
import { NotFoundError } from "../errors.js";
import type { AddressAllocator } from "../ipam/allocator.js";
import type { Claims } from "../ipam/claims.js";
import type { RecordStore } from "../store/kv.js";
import type { Liveness } from "./liveness.js";

export type NodeStore = RecordStore<typeof NodeRecord>;
export type PeerStore = RecordStore<typeof PeerRecord>;

/** Revoke a node's NATS user key. Throws only when the revocation was not recorded. */
export type RevokeCredential = (natsPublicKey: string) => Promise<unknown>;

export function peerRecordOf(node: NodeRecord): PeerRecord {
  return {
    version: 1,
    nodeId: node.nodeId,
    name: node.name,
    site: node.site,
    wireguardPublicKey: node.wireguardPublicKey,
    overlayAddress: node.overlayAddress,
    ...(node.identity ? { identity: node.identity } : {}),
    allowedIps: [`${node.overlayAddress}/32`],
    endpoints: node.endpoints,
    updatedAt: new Date().toISOString(),
  };
}

export class NodeRegistry {
  constructor(
    private readonly nodes: NodeStore,
    private readonly peers: PeerStore,
    private readonly claims: Claims,
    private readonly allocator: AddressAllocator,
    private readonly liveness: Liveness,
    private readonly log: Logger,
    private readonly revokeCredential: RevokeCredential,
  ) {}

  /** Write a freshly enrolled node: its full record, then its public peer record. */
  async add(node: NodeRecord): Promise<void> {
    await this.nodes.put(node.nodeId, node);
    try {
      await this.peers.put(node.nodeId, peerRecordOf(node));
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
    for (let attempt = 0; attempt < 5; attempt++) {
      const got = await this.peers.get(nodeId);
      if (!got) return "gone";
      if (got.value.sessionEpoch === epoch) return "unchanged";
      const next = { ...got.value, sessionEpoch: epoch, updatedAt: new Date().toISOString() };
      if ((await this.peers.update(nodeId, next, got.revision)) !== false) {
        this.log.info({ node: nodeId, epoch }, "node's WireGuard interface was recreated; peers will re-handshake");
        return "updated";
      }
    }
    throw new Error(`node ${nodeId}: session epoch update kept losing races`);
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
    await this.peers.delete(nodeId);
    await this.nodes.delete(nodeId);
    await this.allocator.release(nodeId, view.overlayAddress);
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
