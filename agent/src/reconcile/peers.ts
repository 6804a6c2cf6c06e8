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
 * Peers this node opens tunnels to that still have no handshake a moment later are re-added and
 * warmed up again, a few times (peers/first-handshake.ts), instead of waiting for WireGuard's 5 s
 * retry; not the peers whose endpoint the path manager owns (relayed, being probed or punched: it
 * watches them).
 * Peers behind NAT get the endpoint the path manager (nat/manager.ts) chose; when it chooses
 * another, it asks for the last peer set to be applied again (`reapply`).
 * On a public node, the peers it is given no endpoint for (behind NAT, other sites) are added at a
 * start from the cache with the endpoint they last reached it from, when WireGuard has none for
 * them (peers/remembered-endpoints.ts): a new interface handshakes with them at once, control plane
 * or not. `observe` keeps those endpoints in the state from what the heartbeats read of the device.
 */
import type { PeerRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { LatestWins } from "@weft/util";
import type { PeerSet } from "../control/peer-watch.js";
import type { AgentDatapath } from "../datapath/datapath.js";
import { desiredPeers, type Self } from "../peers/desired.js";
import { renewedSessions } from "../peers/epochs.js";
import { FIRST_HANDSHAKE_RETRY_MS, withoutHandshake } from "../peers/first-handshake.js";
import { rememberEndpoints, withRememberedEndpoints } from "../peers/remembered-endpoints.js";
import { warmUp } from "../peers/warmup.js";
import type { StateHolder } from "../state/holder.js";
import type { StatusReporter } from "../status/reporter.js";
import type { ActualPeer, DesiredPeer, WireGuard } from "../wireguard/index.js";
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
  /** The pauses before each re-add of the peers without a handshake (default FIRST_HANDSHAKE_RETRY_MS). */
  firstHandshakeRetryMs?: readonly number[];
}

/** Where a peer set came from: the cache at start, NATS, or an endpoint choice of the path manager. */
type Source = "cache" | "nats" | "paths";

/** A peer set to apply; `rehandshake` names peers to re-add, `attempt` which retry this is. */
interface Job {
  set: PeerSet;
  source: Exclude<Source, "cache">;
  rehandshake?: ReadonlySet<string>;
  attempt?: number;
}

/**
 * A newer set replacing a job still queued: the newer set, with the replaced job's re-adds.
 * Dropping them would leave those peers to WireGuard's 5 s retry and end the first-handshake
 * retries — an agent busy at start (loading modules) gets several sets while a re-add waits.
 */
function keepReAdds(replaced: Job, next: Job): Job {
  if (!replaced.rehandshake && replaced.attempt === undefined) return next;
  return {
    ...next,
    source: replaced.source === "nats" ? "nats" : next.source,
    rehandshake: new Set([...(replaced.rehandshake ?? []), ...(next.rehandshake ?? [])]),
    attempt: Math.max(replaced.attempt ?? 0, next.attempt ?? 0),
  };
}

export class PeerReconciler {
  /** Resolves once the first peer set from NATS has been applied. */
  readonly synced: Promise<void>;
  /**
   * Resolves once the first peer set from NATS has been applied and the first handshakes it
   * started are done or no longer retried: work started after it (loading the SPIFFE stack) neither
   * holds the event loop while the re-adds' timers are due nor takes the CPU the handshakes need.
   */
  readonly settled: Promise<void>;
  #settle: () => void = () => undefined;
  /** A look at the first handshakes is scheduled. */
  #retrying = false;
  readonly #queue: LatestWins<Job>;
  /** The newest set submitted: `reapply` and a retry apply it again, so never an older one over a newer. */
  #latest: PeerSet | undefined;
  /** A set from NATS is queued: whatever runs next records it (a reapply may have replaced it in the queue). */
  #natsPending = false;
  /** Public keys of the applied peers this node can open a tunnel to (they have an endpoint), but for the path manager's. */
  #reachable: string[] = [];
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Public keys of the applied peers this node is given no endpoint for (undefined until a set is applied). */
  #unaddressed: Set<string> | undefined;

  constructor(private readonly o: PeerReconcilerOptions) {
    let markSynced: () => void = () => undefined;
    this.synced = new Promise<void>((resolve) => (markSynced = resolve));
    this.settled = new Promise<void>((resolve) => (this.#settle = resolve));
    this.#queue = new LatestWins<Job>(
      async (job) => {
        const from = this.#natsPending ? "nats" : job.source;
        this.#natsPending = false;
        await this.#apply(job, from);
        if (from === "nats") markSynced();
      },
      (err) => o.log.error({ err }, "applying peers failed; will retry on the next change or resync"),
      keepReAdds,
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
      this.#latest = { peers: new Map(applied.peers.map((p) => [p.nodeId, p])), revision: applied.revision };
      await this.#apply({ set: this.#latest, source: "nats" }, "cache");
    }
  }

  /**
   * A look at the device (the heartbeats read it): keeps in the state where the peers this node
   * has no endpoint for reach it from, when that changed. Never throws.
   */
  async observe(actual: readonly ActualPeer[]): Promise<void> {
    const { state, log } = this.o;
    if (this.#unaddressed === undefined) return;
    const next = rememberEndpoints(state.current.rememberedEndpoints, actual, this.#unaddressed, Date.now());
    if (next) await state.update({ rememberedEndpoints: next }).catch((err: unknown) => log.warn({ err }, "cannot record the peers' endpoints"));
  }

  /** Applies `set` after the one being applied; sets submitted meanwhile replace each other. */
  submit(set: PeerSet): void {
    this.#latest = set;
    this.#natsPending = true;
    this.#queue.submit({ set, source: "nats" });
  }

  /** Applies the last peer set again: the path manager chose other endpoints. */
  reapply(): void {
    if (this.#latest) this.#queue.submit({ set: this.#latest, source: "paths" });
  }

  /** No more retries of first handshakes (the agent is stopping). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#settle();
  }

  /** Resolves when no peer set is pending or being applied. */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  async #apply(job: Job, source: Source): Promise<void> {
    const { self, wireguard, datapath, state, log } = this.o;
    const { set } = job;
    const records = [...set.peers.values()];
    const taken = await this.o.siteRoutes.decide(records);
    this.o.paths?.setPeers(records);
    const chosen = this.o.paths?.endpoints();
    const desired = desiredPeers(self, records, taken.byNode, chosen);
    // Behind NAT, the peers without an endpoint are the path manager's (relayed, punched): not remembered.
    this.#unaddressed = new Set(self.behindNat ? [] : desired.filter((p) => p.endpoint === undefined).map((p) => p.publicKey));
    const toApply = source === "cache" && !self.behindNat ? await this.#withRemembered(desired) : desired;
    const drop = await this.#stillWithoutHandshake(job.rehandshake);
    if (self.behindNat) {
      // Peers that lost their sessions cannot reach us: drop the stale session so the re-add handshakes now.
      const renewed = renewedSessions(state.current.applied?.peers, records);
      if (renewed.size > 0) log.info({ peers: [...renewed] }, "peers recreated their interfaces; re-handshaking");
      for (const key of renewed) drop.add(key);
    }
    if (drop.size > 0) await wireguard.syncPeers(toApply.filter((p) => !drop.has(p.publicKey)));
    const { changes, ...counts } = await wireguard.syncPeers(toApply);
    if (changes.length > 0) log.info({ revision: set.revision, source, ...counts }, "peers applied");
    await this.o.siteRoutes.apply(records, taken);
    if (datapath) {
      const synced = await datapath.applyPeers(self.nodeId, records);
      if (synced.ipcache.set + synced.ipcache.deleted + synced.tunnels.set + synced.tunnels.deleted > 0) log.info({ revision: set.revision, source, ...synced }, "ipcache and tunnels applied");
    }
    const touched = new Set(changes.flatMap((c) => (c.kind === "add" ? [c.peer.publicKey] : c.kind === "update" && c.endpoint ? [c.publicKey] : [])));
    await (this.o.warmUp ?? warmUp)(records.filter((r) => touched.has(r.wireguardPublicKey)).map((r) => r.overlayAddress));
    if (source === "nats") await this.#record(set, records);
    // The path manager's peers are its own to re-add: re-adding one mid-probe would undo the probe's endpoint.
    const managed = new Set(records.filter((r) => chosen?.has(r.nodeId)).map((r) => r.wireguardPublicKey));
    this.#reachable = desired.filter((p) => p.endpoint !== undefined && !managed.has(p.publicKey)).map((p) => p.publicKey);
    // New tunnels (or those just re-added) are looked at again shortly (peers/first-handshake.ts).
    if (source === "nats" && (job.attempt !== undefined || touched.size > 0)) this.#checkHandshakesLater((job.attempt ?? 0) + 1);
    // Settled once the first tunnels have their handshakes (or are no longer retried), behind NAT
    // or not: what waits for it (SPIFFE) would compete with the handshakes for the CPU.
    if (source === "nats" && !this.#retrying) this.#settle();
  }

  /** `desired` with the remembered endpoints given to the peers WireGuard has no endpoint for (a start from the cache). */
  async #withRemembered(desired: DesiredPeer[]): Promise<DesiredPeer[]> {
    const remembered = this.o.state.current.rememberedEndpoints;
    if (!remembered || Object.keys(remembered).length === 0) return desired;
    const actual = await this.o.wireguard.peers().catch(() => []);
    const { peers, given } = withRememberedEndpoints(desired, actual, remembered);
    if (given.length > 0) this.o.log.info({ peers: given }, "peers behind NAT added with the endpoints they last reached this node from");
    return peers;
  }

  /**
   * Of the peers a look asked to re-add, those that still have no handshake now: the job may have
   * waited behind another set, and re-adding a peer whose handshake completed meanwhile would cut
   * its fresh session (and leave it out of WireGuard between the remove and the add).
   */
  async #stillWithoutHandshake(asked: ReadonlySet<string> | undefined): Promise<Set<string>> {
    if (!asked || asked.size === 0) return new Set();
    const actual = await this.o.wireguard.peers().catch(() => undefined);
    return new Set(actual ? withoutHandshake([...asked], actual) : asked);
  }

  /** After a pause, re-adds the peers that still have no handshake (a bounded number of times). */
  #checkHandshakesLater(attempt: number): void {
    const pause = (this.o.firstHandshakeRetryMs ?? FIRST_HANDSHAKE_RETRY_MS)[attempt - 1];
    clearTimeout(this.#retryTimer);
    const done = () => {
      this.#retrying = false;
      this.#settle();
    };
    if (this.#stopped || pause === undefined) return done();
    this.#retrying = true;
    this.#retryTimer = setTimeout(() => {
      void (async () => {
        if (this.#stopped || !this.#latest) return done();
        const missing = withoutHandshake(this.#reachable, (await this.o.wireguard.peers().catch(() => undefined)) ?? []);
        // The newest set as of now, not of before the await: a set that came meanwhile must not be replaced by an older one.
        const latest = this.#latest;
        if (missing.length === 0 || this.#stopped) return done();
        this.o.log.info({ peers: missing.length, attempt }, "no handshake yet with some peers; re-adding them to initiate again");
        this.#queue.submit({ set: latest, source: "nats", rehandshake: new Set(missing), attempt });
      })();
    }, pause);
    this.#retryTimer.unref();
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
