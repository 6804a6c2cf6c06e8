/**
 * The node registry: full node records (controller-only bucket) and the public
 * peer records every agent watches (one key per node, so a change costs one
 * message per watcher). Deleting a node removes its peer record first, so
 * agents drop it from WireGuard before anything else is cleaned up.
 */
import { NodeRecord, NodeView, PeerRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { NotFoundError } from "../errors.js";
import type { AddressAllocator } from "../ipam/allocator.js";
import type { Claims } from "../ipam/claims.js";
import type { RecordStore } from "../store/kv.js";
import type { Liveness } from "./liveness.js";

export type NodeStore = RecordStore<typeof NodeRecord>;
export type PeerStore = RecordStore<typeof PeerRecord>;

export function peerRecordOf(node: NodeRecord): PeerRecord {
  return {
    version: 1,
    nodeId: node.nodeId,
    name: node.name,
    site: node.site,
    wireguardPublicKey: node.wireguardPublicKey,
    overlayAddress: node.overlayAddress,
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
  ) {}

  /** Write a freshly enrolled node: its full record, then its public peer record. */
  async add(node: NodeRecord): Promise<void> {
    await this.nodes.put(node.nodeId, node);
    await this.peers.put(node.nodeId, peerRecordOf(node));
  }

  async get(nodeId: string): Promise<NodeView> {
    const got = await this.nodes.get(nodeId);
    if (!got) throw new NotFoundError(`node ${nodeId} does not exist; list nodes with \`weft nodes list\``);
    return this.view(got.value);
  }

  async list(): Promise<NodeView[]> {
    const all = await this.nodes.list(undefined, (key, err) => this.log.warn({ node: key, err }, "skipping unreadable node record"));
    return all.map((r) => this.view(r.value)).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Find a node by id or by name. */
  async resolve(idOrName: string): Promise<NodeView> {
    if (idOrName.startsWith("n-")) return this.get(idOrName);
    const owner = await this.claims.owner("name", idOrName);
    if (!owner) throw new NotFoundError(`no node is named ${idOrName}`);
    return this.get(owner);
  }

  async delete(nodeId: string): Promise<NodeView> {
    const view = await this.get(nodeId);
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
