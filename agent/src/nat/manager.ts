/**
 * Paths to peers: the one owner of which endpoint a peer behind NAT gets (relay, probe candidate
 * or punched direct path) and of each peer's measured round-trip time. The decisions are
 * paths.ts's; this object keeps the state, runs the probes and tells the peer reconciler to apply
 * again when an endpoint choice changes (it alone writes WireGuard's peer list; a probe only
 * re-asserts its candidate endpoint, since WireGuard roams to wherever the peer's packets come
 * from).
 *
 * Loops (timers, started by start()):
 *   - monitor (1 s): reads WireGuard's peers: the reported path of each, a peer that fell back to
 *     the relay (three looks in a row at the relay's address), endpoint changes (reported at once
 *     through `onChange`, which sends an early heartbeat: that is how the controller learns where
 *     public peers see a NAT'd node);
 *   - RTT (every 3 s): one probe ping per peer that has a WireGuard session (a handshake within
 *     SESSION_MS) and per punched path; three missed in a row on a punched path fall back to the
 *     relay. A peer without a session cannot answer: it is pinged every SESSIONLESS_EVERY-th round
 *     (15 s) only. The ping there serves to make WireGuard initiate a handshake, and one packet makes
 *     wireguard-go retry on its own every 5 s for 90 s (REKEY_TIMEOUT, REKEY_ATTEMPT_TIME), so
 *     pinging it every 3 s sent the same initiations at 5 times the agent's cost (100 peers
 *     that never answer: 33 pings a second). Once its handshake completes (seen by the monitor)
 *     it is pinged every round again.
 * A probe (a new punching round for a peer): for each candidate, point WireGuard at it and ping
 * (each ping waits up to 1.5 s; the candidate is re-pointed before each) for up to 5 s; an answer
 * after which WireGuard still sends to the candidate makes the path direct: the answer came from
 * the candidate (WireGuard roams to where the peer's packets come from, and nothing but the probe
 * sets this peer's endpoint while it runs). Else back to the relay. A failed probe costs the pair
 * up to 5 s of its relayed path (WireGuard has one endpoint per peer); the controller spaces rounds
 * out. While it runs the peer's path is reported as `none` (WireGuard sends to an unproven
 * candidate, not to the relay). A round arriving before the peer record names candidates waits for
 * it; a pair where a NAT maps per destination has nothing to probe, and a probe under way stops as
 * soon as the records say so (a round can start on a mapping seen by one observer only, and the
 * second observation shows it maps per destination).
 */
import type { NodePathsRecord, PeerPathPlan, PeerRecord, PeerHandshake } from "@weft/protocol";
import type { Logger } from "pino";
import { sleep } from "@weft/util";
import type { Self } from "../peers/desired.js";
import type { ActualPeer, WireGuard } from "../wireguard/index.js";
import { candidatesOf, isTraversalPeer, newRound, reportedPath, traversalEndpoint, type TraversalState } from "./paths.js";
import type { PathProbe } from "./probe.js";

export interface PeerPathStatus {
  peer: string;
  nodeId: string;
  path: PeerHandshake["path"] & string;
  /** The relay node's name, when relayed. */
  via?: string;
  endpoint?: string;
  rttMs?: number;
}

export interface PathManagerOptions {
  self: Self;
  wireguard: Pick<WireGuard, "peers" | "setEndpoint">;
  probe: Pick<PathProbe, "ping">;
  /** Apply the current peer set again (endpoint choices changed). */
  reapply: () => void;
  /** Something a heartbeat reports changed (a path, an endpoint WireGuard sees). */
  onChange: () => void;
  log: Logger;
  monitorMs?: number;
  rttMs?: number;
  probeTiming?: { intervalMs?: number; windowMs?: number };
}

const FALLBACK_LOOKS = 3;
const MAX_MISSED = 3;
/** A handshake younger than this: WireGuard has a session with the peer (REJECT_AFTER_TIME, 180 s). */
export const SESSION_MS = 180_000;
/** Peers without a session are pinged in one RTT round of this many. */
export const SESSIONLESS_EVERY = 5;

export class PathManager {
  #records = new Map<string, PeerRecord>();
  /** The same records by WireGuard public key (heartbeats ask by key, once per peer). */
  #byKey = new Map<string, PeerRecord>();
  #selfRecord: PeerRecord | undefined;
  #plan = new Map<string, PeerPathPlan>();
  readonly #traversal = new Map<string, TraversalState>();
  #actual = new Map<string, ActualPeer>();
  readonly #rtt = new Map<string, number>();
  readonly #relayLooks = new Map<string, number>();
  readonly #probing = new Set<string>();
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  /** RTT rounds so far (peers without a session are pinged in the first and every SESSIONLESS_EVERY-th after). */
  #round = 0;

  constructor(private readonly o: PathManagerOptions) {}

  start(): void {
    this.#timers.push(setInterval(() => void this.#monitor(), this.o.monitorMs ?? 1000));
    this.#timers.push(setInterval(() => void this.#measure(), this.o.rttMs ?? 3000));
    for (const t of this.#timers) t.unref();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  /** The peer set being applied (called by the peer reconciler before it computes desired peers). */
  setPeers(records: readonly PeerRecord[]): void {
    this.#records = new Map(records.filter((r) => r.nodeId !== this.o.self.nodeId).map((r) => [r.nodeId, r]));
    this.#byKey = new Map([...this.#records.values()].map((r) => [r.wireguardPublicKey, r]));
    this.#selfRecord = records.find((r) => r.nodeId === this.o.self.nodeId);
    for (const r of this.#records.values()) {
      if (isTraversalPeer(this.o.self, r) && !this.#traversal.has(r.nodeId)) this.#traversal.set(r.nodeId, { mode: "relay", round: 0, missed: 0 });
    }
    for (const id of [...this.#traversal.keys()]) {
      const r = this.#records.get(id);
      if (!r || !isTraversalPeer(this.o.self, r)) this.#traversal.delete(id);
    }
    for (const id of this.#traversal.keys()) this.#maybeProbe(id);
  }

  /** This node's path plan from the controller (null: none). */
  setPlan(record: NodePathsRecord | null): void {
    const before = this.endpoints();
    this.#plan = new Map((record?.peers ?? []).map((p) => [p.peer, p]));
    for (const id of this.#traversal.keys()) this.#maybeProbe(id);
    if (!sameMap(before, this.endpoints())) this.o.reapply();
  }

  /** Endpoint overrides for desiredPeers: each traversal peer's relay, probe candidate or direct path. */
  endpoints(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [id, state] of this.#traversal) {
      const e = traversalEndpoint(state, this.#plan.get(id));
      if (e) out.set(id, e);
    }
    return out;
  }

  /** What a heartbeat says about one peer (by WireGuard key). */
  report(publicKey: string): Pick<PeerHandshake, "path" | "via" | "rttMs"> {
    const record = this.#byKey.get(publicKey);
    if (!record) return {};
    const { path, via } = this.#path(record);
    const rtt = this.#rtt.get(record.nodeId);
    return { path, ...(via ? { via } : {}), ...(rtt !== undefined ? { rttMs: round2(rtt) } : {}) };
  }

  /**
   * Whether the controller needs this peer in every heartbeat (when a heartbeat cannot hold every
   * peer): a peer behind NAT (no public endpoint: what this node sees of it is its reflexive
   * endpoint) or one this node reaches through traversal (the coordinator reads its path). Not
   * "any peer off the direct path": in a large fleet most peers carry no traffic, have no session
   * and so no path, and would crowd out the ones that matter.
   */
  reportFirst(publicKey: string): boolean {
    const record = this.#byKey.get(publicKey);
    return record !== undefined && (record.endpoints.public === undefined || this.#traversal.has(record.nodeId));
  }

  /** Every peer's path, for status.json and `weft status`. */
  status(): PeerPathStatus[] {
    const names = new Map([...this.#records.values()].map((r) => [r.nodeId, r.name]));
    return [...this.#records.values()]
      .map((r): PeerPathStatus => {
        const actual = this.#actual.get(r.wireguardPublicKey);
        const { path, via } = this.#path(r);
        const rtt = this.#rtt.get(r.nodeId);
        return {
          peer: r.name,
          nodeId: r.nodeId,
          path,
          ...(via ? { via: names.get(via) ?? this.#plan.get(r.nodeId)?.relay?.name ?? via } : {}),
          ...(actual?.endpoint ? { endpoint: actual.endpoint } : {}),
          ...(rtt !== undefined ? { rttMs: round2(rtt) } : {}),
        };
      })
      .sort((a, b) => a.peer.localeCompare(b.peer));
  }

  /**
   * The reported path, read off WireGuard; a probe in progress points WireGuard at an unproven
   * candidate, so the path is `none` until it ends (neither the relay, which gets nothing meanwhile,
   * nor direct before an answer proves it).
   */
  #path(r: PeerRecord): ReturnType<typeof reportedPath> {
    if (this.#traversal.get(r.nodeId)?.mode === "probing") return { path: "none" };
    return reportedPath(this.#actual.get(r.wireguardPublicKey), this.#plan.get(r.nodeId), Date.now());
  }

  /** Whether the latest records still give the pair something to probe (a NAT seen to map per destination ends it). */
  #stillProbable(nodeId: string): boolean {
    const record = this.#records.get(nodeId);
    return record !== undefined && candidatesOf(record, this.#selfRecord) !== "none";
  }

  #maybeProbe(nodeId: string): void {
    const state = this.#traversal.get(nodeId);
    if (!state || this.#probing.has(nodeId) || this.#stopped) return;
    const round = newRound(state, this.#plan.get(nodeId));
    const record = this.#records.get(nodeId);
    if (round === undefined || !record) return;
    const candidates = candidatesOf(record, this.#selfRecord);
    if (candidates === "wait") return; // setPeers calls again when the record changes
    if (candidates === "none") {
      state.round = round;
      return;
    }
    this.#probing.add(nodeId);
    void this.#probe(nodeId, round, candidates)
      .catch((err: unknown) => this.o.log.warn({ peer: nodeId, err }, "path probe failed"))
      .finally(() => {
        this.#probing.delete(nodeId);
        this.#maybeProbe(nodeId); // a round that came meanwhile
      });
  }

  async #probe(nodeId: string, round: number, candidates: readonly string[]): Promise<void> {
    const state = this.#traversal.get(nodeId);
    const record = this.#records.get(nodeId);
    if (!state || !record) return;
    state.round = round;
    const wait = this.o.probeTiming?.intervalMs ?? 1500;
    const window = this.o.probeTiming?.windowMs ?? 5000;
    const started = Date.now();
    state.mode = "probing";
    this.o.reapply(); // from now on the reconciler leaves this peer's endpoint to the probe
    for (const candidate of candidates.slice(0, 2)) {
      state.candidate = candidate;
      const deadline = Date.now() + window;
      while (Date.now() < deadline && !this.#stopped && this.#stillProbable(nodeId)) {
        await this.o.wireguard.setEndpoint(record.wireguardPublicKey, candidate).catch(() => undefined);
        const rtt = await this.o.probe.ping(record.overlayAddress, Math.min(wait, Math.max(100, deadline - Date.now())));
        if (rtt !== undefined && (await this.#sendsTo(record.wireguardPublicKey, candidate))) {
          state.mode = "direct";
          state.direct = candidate;
          state.missed = 0;
          delete state.candidate;
          this.#rtt.set(nodeId, rtt);
          this.o.log.info({ peer: record.name, round, endpoint: candidate, rttMs: round2(rtt), tookMs: Date.now() - started }, "direct path to peer through NAT");
          this.o.reapply();
          this.o.onChange();
          return;
        }
        if (rtt !== undefined) await sleep(Math.min(300, wait)); // answered through the relay: the peer has not switched yet
      }
    }
    state.mode = "relay";
    delete state.candidate;
    delete state.direct;
    const relay = this.#plan.get(nodeId)?.relay;
    const why = candidates.length === 0 ? "no candidate endpoints to probe" : this.#stillProbable(nodeId) ? "no direct path to peer; relayed" : "a NAT of the pair maps per destination (seen during the probe); relayed";
    this.o.log.info({ peer: record.name, round, candidates, relay: relay?.name }, why);
    this.o.reapply();
    this.o.onChange();
  }

  async #sendsTo(publicKey: string, endpoint: string): Promise<boolean> {
    const peers = await this.o.wireguard.peers().catch(() => []);
    return peers.find((p) => p.publicKey === publicKey)?.endpoint === endpoint;
  }

  async #monitor(): Promise<void> {
    if (this.#stopped) return;
    let peers: ActualPeer[];
    try {
      peers = await this.o.wireguard.peers();
    } catch {
      return;
    }
    const next = new Map(peers.map((p) => [p.publicKey, p]));
    let changed = false;
    for (const [key, p] of next) {
      const was = this.#actual.get(key);
      if (was?.endpoint !== p.endpoint || Boolean(was?.latestHandshake) !== Boolean(p.latestHandshake)) changed = true;
    }
    this.#actual = next;
    // A punched path whose peer went back to the relay: WireGuard roamed to the relay's address.
    for (const [id, state] of this.#traversal) {
      if (state.mode !== "direct") continue;
      const record = this.#records.get(id);
      const relay = this.#plan.get(id)?.relay?.endpoint;
      const looks = record && relay && next.get(record.wireguardPublicKey)?.endpoint === relay ? (this.#relayLooks.get(id) ?? 0) + 1 : 0;
      this.#relayLooks.set(id, looks);
      if (looks >= FALLBACK_LOOKS) this.#fallBack(id, "the peer sends through the relay again");
    }
    if (changed) this.o.onChange();
  }

  /** Whether a peer is pinged in this RTT round: it has a session, it is on a punched path, or it is the sessionless peers' round. */
  #pingsThisRound(r: PeerRecord, round: number, now: number): boolean {
    if (round % SESSIONLESS_EVERY === 0 || this.#traversal.get(r.nodeId)?.mode === "direct") return true;
    const handshake = this.#actual.get(r.wireguardPublicKey)?.latestHandshake;
    return handshake !== undefined && now - handshake.getTime() < SESSION_MS;
  }

  async #measure(): Promise<void> {
    if (this.#stopped) return;
    const now = Date.now();
    const round = this.#round++; // the first round pings every peer
    const peers = [...this.#records.values()].filter((r) => {
      if (this.#pingsThisRound(r, round, now)) return true;
      this.#rtt.delete(r.nodeId); // no session: no round trip to report
      return false;
    });
    await Promise.all(
      peers.map(async (r) => {
        if (this.#probing.has(r.nodeId)) return;
        const rtt = await this.o.probe.ping(r.overlayAddress, 1000);
        if (rtt !== undefined) this.#rtt.set(r.nodeId, rtt);
        else this.#rtt.delete(r.nodeId);
        const state = this.#traversal.get(r.nodeId);
        if (!state || state.mode !== "direct" || this.#probing.has(r.nodeId)) return;
        state.missed = rtt === undefined ? state.missed + 1 : 0;
        if (state.missed >= MAX_MISSED) this.#fallBack(r.nodeId, `${MAX_MISSED} pings unanswered on the direct path`);
      }),
    );
  }

  #fallBack(nodeId: string, why: string): void {
    const state = this.#traversal.get(nodeId);
    if (!state || state.mode !== "direct") return;
    state.mode = "relay";
    delete state.direct;
    state.missed = 0;
    this.#relayLooks.delete(nodeId);
    this.o.log.info({ peer: this.#records.get(nodeId)?.name, why }, "direct path lost; back to the relay");
    this.o.reapply();
    this.o.onChange();
  }
}

function sameMap(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
