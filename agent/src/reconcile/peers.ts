/**
 * Peers: converges the WireGuard peers, the site routes taken from them and the datapath's
 * ipcache and tunnels on one peer set at a time (the latest wins), from the cache at start (fail
 * static) and then from NATS. Decisions are the pure functions of peers/ (desiredPeers,
 * renewedSessions, siteRoutesToTake); this object acts on them and records what it applied
 * (`state.applied`, the status' revision and peer count).
 *
 * Behind NAT a peer that recreated its interface (a new session epoch) cannot reach this node
 * first, so its stale session is dropped before the re-add and the handshake happens at once.
 * New or moved tunnels get one warm-up datagram each, so they handshake before traffic needs them.
 * Peers behind NAT get the endpoint the path manager (nat/manager.ts) chose; when it chooses
 * another, it asks for the last peer set to be applied again (`reapply`).
 */
import type { PeerRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { LatestWins } from "@weft/util";
import type { PeerSet } from "../control/peer-watch.js";
import type { AgentDatapath } from "../datapath/datapath.js";
import { desiredPeers, type Self } from "../peers/desired.js";
import { renewedSessions } from "../peers/epochs.js";
import { warmUp } from "../peers/warmup.js";
import type { StateHolder } from "../state/holder.js";
import type { StatusReporter } from "../status/reporter.js";
import type { WireGuard } from "../wireguard/index.js";
import type { SiteRouteReconciler } from "./site-routes.js";

export interface PeerReconcilerOptions {
  self: Self;
  wireguard: WireGuard;
  siteRoutes: SiteRouteReconciler;
  /** Undefined when datapath.enabled is false. */
  datapath: AgentDatapath | undefined;
  state: StateHolder;
  status: StatusReporter;
  log: Logger;
  /** Sends one datagram into each new tunnel (default peers/warmup.ts); tests replace it. */
  warmUp?: (overlayAddresses: readonly string[]) => Promise<void>;
  /** The path manager (nat/manager.ts): told each peer set, and asked for the endpoints of peers behind NAT. */
  paths?: { setPeers(records: readonly PeerRecord[]): void; endpoints(): ReadonlyMap<string, string> };
}

/** Where a peer set came from: the cache at start, NATS, or an endpoint choice of the path manager. */
type Source = "cache" | "nats" | "paths";

export class PeerReconciler {
  /** Resolves once the first peer set from NATS has been applied. */
  readonly synced: Promise<void>;
  readonly #queue: LatestWins<{ set: PeerSet; source: Source }>;
  /** The last peer set applied or queued, which `reapply` applies again. */
  #last: PeerSet | undefined;
  /** A set from NATS is queued: whatever runs next records it (a reapply may have replaced it in the queue). */
  #natsPending = false;

  constructor(private readonly o: PeerReconcilerOptions) {
    let markSynced: () => void = () => undefined;
    this.synced = new Promise<void>((resolve) => (markSynced = resolve));
    this.#queue = new LatestWins<{ set: PeerSet; source: Source }>(
      async ({ set, source }) => {
        const from = this.#natsPending ? "nats" : source;
        this.#natsPending = false;
        await this.#apply(set, from);
        if (from === "nats") markSynced();
      },
      (err) => o.log.error({ err }, "applying peers failed; will retry on the next change or resync"),
    );
  }

  /** Fail static, first step: the cached peers' ipcache and tunnels, refilled before any program is attached. */
  async restoreDatapath(): Promise<void> {
    const applied = this.o.state.current.applied;
    if (this.o.datapath && applied) await this.o.datapath.applyPeers(this.o.self.nodeId, applied.peers);
  }

  /** Fail static: the last applied peers put back (tunnels, site routes, datapath) before anyone is reached. */
  async restore(): Promise<void> {
    const applied = this.o.state.current.applied;
    if (applied) {
      this.#last = { peers: new Map(applied.peers.map((p) => [p.nodeId, p])), revision: applied.revision };
      await this.#apply(this.#last, "cache");
    }
  }

  /** Applies `set` after the one being applied; sets submitted meanwhile replace each other. */
  submit(set: PeerSet): void {
    this.#last = set;
    this.#natsPending = true;
    this.#queue.submit({ set, source: "nats" });
  }

  /** Applies the last peer set again: the path manager chose other endpoints. */
  reapply(): void {
    if (this.#last) this.#queue.submit({ set: this.#last, source: "paths" });
  }

  /** Resolves when no peer set is pending or being applied. */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  async #apply(set: PeerSet, source: Source): Promise<void> {
    const { self, wireguard, datapath, state, log } = this.o;
    const records = [...set.peers.values()];
    const taken = await this.o.siteRoutes.decide(records);
    this.o.paths?.setPeers(records);
    const desired = desiredPeers(self, records, taken.byNode, this.o.paths?.endpoints());
    if (self.behindNat) {
      // Peers that lost their sessions cannot reach us: drop the stale session so the re-add handshakes now.
      const renewed = renewedSessions(state.current.applied?.peers, records);
      if (renewed.size > 0) {
        log.info({ peers: [...renewed] }, "peers recreated their interfaces; re-handshaking");
        await wireguard.syncPeers(desired.filter((p) => !renewed.has(p.publicKey)));
      }
    }
    const { changes, ...counts } = await wireguard.syncPeers(desired);
    if (changes.length > 0) log.info({ revision: set.revision, source, ...counts }, "peers applied");
    await this.o.siteRoutes.apply(records, taken);
    if (datapath) {
      const synced = await datapath.applyPeers(self.nodeId, records);
      if (synced.ipcache.set + synced.ipcache.deleted + synced.tunnels.set + synced.tunnels.deleted > 0) log.info({ revision: set.revision, source, ...synced }, "ipcache and tunnels applied");
    }
    const touched = new Set(changes.flatMap((c) => (c.kind === "add" ? [c.peer.publicKey] : c.kind === "update" && c.endpoint ? [c.publicKey] : [])));
    await (this.o.warmUp ?? warmUp)(records.filter((r) => touched.has(r.wireguardPublicKey)).map((r) => r.overlayAddress));
    if (source === "nats") await this.#record(set, records);
  }

  /** What a peer set from NATS leaves behind: the cache for the next start, and the status. */
  async #record(set: PeerSet, records: PeerRecord[]): Promise<void> {
    const { state, status, log } = this.o;
    const removed = !set.peers.has(this.o.self.nodeId);
    if (removed && !status.current.removed) log.error("this node is no longer in the overlay (deleted on the controller?); enroll again with a new join key after removing the state directory");
    await state.update({ applied: { revision: set.revision, peers: records, appliedAt: new Date().toISOString() } });
    status.publish({ removed, appliedRevision: set.revision, peers: records.length, stale: false, lastSyncAt: new Date().toISOString() });
  }
}
