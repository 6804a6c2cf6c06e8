/**
 * The node registry: the only writer of node records (controller-only bucket) and of the public
 * peer records every agent watches (one key per node, so a change costs one message per
 * watcher). A peer record is never edited on its own: every change is a change to the node
 * record (`updateNode`), and the peer record is rebuilt from the node record in the same step
 * (peer-record.ts), so the two cannot disagree. Changes of one node run one at a time here
 * (KeyedSerial); the node write is compare-and-set, so a write by another controller is never
 * lost, and the peer record is rebuilt until the node record it was built from is still the
 * current one (another controller's change is never overwritten by an older peer). Deleting a node first revokes its NATS credential (the server disconnects it and refuses
 * it from then on), then removes its peer record, so agents drop it from WireGuard before
 * anything else is cleaned up.
 */
import { NODE_ID_PATTERN, NodeRecord, NodeView, PeerRecord, nodeName } from "@weft/protocol";
import { KeyedSerial } from "@weft/util";
import type { Logger } from "pino";
import { NotFoundError } from "../errors.js";
import type { AddressAllocator } from "../ipam/allocator.js";
import type { Claims } from "../ipam/claims.js";
import type { PrefixAllocator } from "../ipam/prefixes.js";
import type { ChangeOutcome, RecordStore, Versioned } from "../store/kv.js";
import type { Liveness } from "./liveness.js";
import { adoptPeerState, peerRecordOf, samePeerRecord } from "./peer-record.js";

export type NodeStore = RecordStore<typeof NodeRecord>;
export type PeerStore = RecordStore<typeof PeerRecord>;

/** Revoke a node's NATS user key. Throws only when the revocation was not recorded. */
export type RevokeCredential = (natsPublicKey: string) => Promise<unknown>;

/**
 * A change to a node record: gets the record as stored and returns the next one, or undefined for
 * no change. It may run more than once (on a lost race), may be async, and may throw to abort.
 */
export type NodeChange = (node: NodeRecord) => NodeRecord | undefined | Promise<NodeRecord | undefined>;

/** What updateNode did: the node record as it now is, or `gone` when the node does not exist. */
export type NodeUpdate = { outcome: "updated" | "unchanged"; node: NodeRecord } | { outcome: "gone"; node?: undefined };

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

/** One updateNode step: the node's outcome and what happened to its peer record. */
interface Step {
  update: NodeUpdate;
  peer: ChangeOutcome | "missing";
}

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
  private readonly serial = new KeyedSerial();

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

  /**
   * Write a freshly enrolled node: its full record and its public peer record, both sent at once.
   * One after the other, the peer record — what every agent waits for — went out only once the
   * node record was acknowledged, and by then the controller's own reactions to the node record
   * (the policy and services publishers' passes over the whole fleet) held its event loop: ~0.6 s
   * at 5,000 nodes. Nothing in the controller reads a peer record before its node record (the
   * registry is their one reader). No half-enrolled node: when either write fails, both records
   * are removed; a controller that dies between the two leaves a peer record without a node
   * record, which the orphan sweep removes after the grace (ipam/orphans.ts).
   */
  async add(node: NodeRecord): Promise<void> {
    await this.serial.run(node.nodeId, async () => {
      const [nodeWrite, peerWrite] = await Promise.allSettled([this.nodes.put(node.nodeId, node), this.peers.put(node.nodeId, this.peerOf(node))]);
      const failed = [nodeWrite, peerWrite].find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (!failed) return;
      // Peer record first, as a deletion does: agents stop using the node before its record goes.
      if (peerWrite.status === "fulfilled") await this.peers.delete(node.nodeId).catch((err: unknown) => this.log.error({ node: node.nodeId, err }, "cannot remove the peer record of a node whose record was not written"));
      if (nodeWrite.status === "fulfilled") await this.nodes.delete(node.nodeId).catch((err: unknown) => this.log.error({ node: node.nodeId, err }, "cannot remove half-written node record"));
      throw failed.reason;
    });
  }

  /**
   * Change a node's record and rebuild its peer record from the result in the same step (written
   * only when it says something new). `change` gets the current record and returns the next one,
   * or undefined for no change. A node without a peer record (an interrupted delete) gets none
   * back: only enrollment makes one.
   */
  async updateNode(nodeId: string, change: NodeChange): Promise<NodeUpdate> {
    if (!NODE_ID_PATTERN.test(nodeId)) return { outcome: "gone" };
    return (await this.serial.run(nodeId, () => this.step(nodeId, change))).update;
  }

  /**
   * Bring every node record and peer record in line (run at start, before anything else writes):
   * state that older controllers kept only in peer records is adopted into the node record, and
   * each peer record is rebuilt from its node record under the current config (a changed
   * overlay.plaintextSites reaches agents). Returns how many peer records changed.
   */
  async reconcile(): Promise<number> {
    const [nodes, peers] = await Promise.all([
      this.nodes.list(undefined, (key, err) => this.log.warn({ node: key, err }, "skipping unreadable node record")),
      this.peers.list(undefined, (key, err) => this.log.warn({ node: key, err }, "skipping unreadable peer record")),
    ]);
    const peerOf = new Map(peers.map((p) => [p.value.nodeId, p]));
    let changed = 0;
    for (const node of nodes) {
      const nodeId = node.value.nodeId;
      try {
        const known = { node, peer: peerOf.get(nodeId) ?? (await this.peers.get(nodeId).catch(() => undefined)) };
        const { peer } = await this.serial.run(nodeId, () => this.step(nodeId, () => undefined, known));
        if (peer === "updated") changed++;
      } catch (err) {
        this.log.warn({ node: nodeId, err }, "cannot bring the node's peer record in line with its node record");
      }
    }
    if (changed > 0) this.log.info({ nodes: changed, plaintextSites: this.plaintextSites }, "peer records rebuilt from node records and config");
    return changed;
  }

  /**
   * The node's workload prefix, allocated now for a node enrolled before workload prefixes
   * existed: claimed (compare-and-set), then written to the node record (a node that got one
   * meanwhile keeps it and the claim is given back). Throws NotFoundError for an unknown node.
   */
  async ensureWorkloadPrefix(nodeId: string): Promise<string> {
    const node = NODE_ID_PATTERN.test(nodeId) ? await this.nodes.get(nodeId) : undefined;
    if (!node) throw new NotFoundError(`node ${nodeId} does not exist`);
    if (node.value.workloadPrefix !== undefined) return node.value.workloadPrefix;
    const claimed = await this.prefixes.allocate(nodeId);
    let got: NodeUpdate;
    try {
      got = await this.updateNode(nodeId, (n) => (n.workloadPrefix !== undefined ? undefined : { ...n, workloadPrefix: claimed, workloads: [] }));
    } catch (err) {
      await this.prefixes.release(nodeId, claimed);
      throw err;
    }
    if (got.outcome === "gone") {
      await this.prefixes.release(nodeId, claimed);
      throw new NotFoundError(`node ${nodeId} was deleted meanwhile`);
    }
    const prefix = got.node.workloadPrefix!;
    if (prefix !== claimed) await this.prefixes.release(nodeId, claimed);
    else this.log.info({ node: nodeId, workloadPrefix: prefix }, "allocated a workload prefix for a node enrolled without one");
    return prefix;
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
    return this.serial.run(nodeId, async () => {
      // The peer record goes first: every agent drops the node from WireGuard as soon as it hears.
      // Revoking the NATS credential has the server re-check every connection of the account (at
      // 5,000 agents ~2 s), which agents need not wait for. The node record stays until the
      // revocation is done, so a delete that fails there can be retried (the peer record is not
      // rebuilt meanwhile: `step` leaves a node without one alone).
      const peerPrefix = (await this.peers.get(nodeId).catch(() => undefined))?.value.workloadPrefix;
      await this.peers.delete(nodeId);
      await this.revokeCredential(view.natsPublicKey);
      await this.nodes.delete(nodeId);
      await this.allocator.release(nodeId, view.overlayAddress);
      for (const prefix of new Set([view.workloadPrefix, peerPrefix])) if (prefix) await this.prefixes.release(nodeId, prefix);
      await this.claims.release("wgkey", view.wireguardPublicKey, nodeId);
      await this.claims.release("name", view.name, nodeId);
      this.liveness.forget(nodeId);
      this.log.info({ node: nodeId, name: view.name }, "node deleted");
      return view;
    });
  }

  /** One change of one node (run inside `serial`): node record, then its peer record rebuilt from it. */
  private async step(nodeId: string, change: NodeChange, known?: { node: Versioned<NodeRecord>; peer: Versioned<PeerRecord> | undefined }): Promise<Step> {
    const peer = known ? known.peer : await this.peers.get(nodeId);
    const written = await this.nodes.change(
      nodeId,
      async (cur) => {
        if (!cur) return undefined;
        const base = adoptPeerState(cur, peer?.value);
        return (await change(base)) ?? (base === cur ? undefined : base);
      },
      known ? { known: known.node } : {},
    );
    const node = written.value;
    if (!node) return { update: { outcome: "gone" }, peer: "absent" };
    const update: NodeUpdate = { outcome: written.outcome === "unchanged" ? "unchanged" : "updated", node };
    if (!peer) {
      this.log.warn({ node: nodeId }, "node record without a peer record (an interrupted delete?); not recreated: delete the node again");
      return { update, peer: "missing" };
    }
    return { update, peer: await this.rebuildPeer(nodeId, { value: node, revision: written.revision! }) };
  }

  /**
   * Rewrite the peer record from `node` when it says something else (read after the node write,
   * compare-and-set), then check the node record is still at the revision it was built from; if
   * another writer (another controller) changed it meanwhile, rebuild from that. So the last peer
   * record written is one built from a node record nobody had changed when it was written, and a
   * writer that finds the peer record already right has read it after its own node write.
   */
  private async rebuildPeer(nodeId: string, node: Versioned<NodeRecord>): Promise<ChangeOutcome> {
    let from = node;
    let outcome: ChangeOutcome = "unchanged";
    for (;;) {
      const built = from.value;
      const rebuilt = await this.peers.change(nodeId, (cur) => {
        if (!cur) return undefined; // deleted meanwhile: the node is being deleted
        const want = this.peerOf(built);
        return samePeerRecord(cur, want) ? undefined : want;
      });
      if (rebuilt.outcome === "absent") return "absent";
      if (rebuilt.outcome === "updated") outcome = "updated";
      const now = await this.nodes.get(nodeId);
      if (!now || now.revision === from.revision) return outcome;
      from = now;
    }
  }

  private peerOf(node: NodeRecord): PeerRecord {
    return peerRecordOf(node, { plaintextSites: this.plaintextSites, updatedAt: new Date().toISOString() });
  }

  private view(node: NodeRecord): NodeView {
    const live = this.liveness.get(node.nodeId);
    return NodeView.parse({
      ...node,
      status: this.liveness.status(node.nodeId),
      lastSeen: live?.lastSeen.toISOString(),
      appliedRevision: live?.heartbeat?.appliedRevision,
      peers: live?.heartbeat?.peers,
      peerCount: live?.heartbeat?.peerCount,
    });
  }
}
