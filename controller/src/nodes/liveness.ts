/**
 * Node liveness from heartbeats, judged only over time the controller could actually see.
 *
 * A node is online while its last heartbeat is younger than `offlineAfterMs` — counted from the
 * later of that heartbeat and the moment the controller could see again. The controller is blind
 * while its own NATS connection is down or does not answer, while its process was frozen (an event
 * loop that did not tick), and before it started; a node cannot report during such a time, so its
 * silence then proves nothing (fail static: a control-plane outage never marks a node offline, and
 * so never moves a gateway or withdraws a route). While blind, statuses stay as they were when
 * blindness began; when sight returns, every node online then gets a whole `offlineAfterMs` from
 * that moment to report. A node already offline stays offline.
 *
 * The return wave: after an outage every agent reconnects at once, and a large fleet takes longer
 * than `offlineAfterMs` to get back through TLS handshakes (measured at 5,000 simulated agents on
 * two cores: p99 27 s, and 774 nodes judged offline 15 s after sight returned, then online again).
 * So while nodes given a grace keep coming back, the grace of those still silent goes on: it runs
 * from the last such return, until a whole `offlineAfterMs` passes with no return, every one is
 * back, or RETURN_WAVE_MAX_PERIODS periods have passed since the grace was given.
 *
 * Every controller keeps this in memory from the heartbeats it receives; the leader writes each
 * change of status to the `weft-liveness` bucket (liveness-store.ts) and every controller starts
 * from what is stored (`seed`).
 */
import type { Heartbeat } from "@weft/protocol";

export interface LivenessEntry {
  lastSeen: Date;
  /** The last heartbeat this controller received (absent for an entry seeded from the store). */
  heartbeat: Heartbeat | undefined;
}

export type LivenessStatus = "online" | "offline" | "never-seen";

interface Entry {
  lastSeen: number;
  heartbeat: Heartbeat | undefined;
  /** Silence before this moment (sight regained) does not count. */
  graceFrom: number | undefined;
}

/** An event loop gap longer than this means the process was frozen (SIGSTOP, a VM pause). */
export const STALL_MS = 3000;

/** The longest a return wave extends the grace: this many offline periods after it was given. */
export const RETURN_WAVE_MAX_PERIODS = 10;

/** Nodes given a grace that have not reported since, and the last time one of them came back. */
interface ReturnWave {
  awaiting: Set<string>;
  lastReturn: number;
  /** The grace of the silent ones runs from at most this moment. */
  until: number;
}

export class Liveness {
  private readonly entries = new Map<string, Entry>();
  /** Nodes heard from (or seeded) since the last takeHeard(): what the liveness recorder looks at first. */
  private heard = new Set<string>();
  /** Since when the controller cannot see (undefined: it can). */
  private blindSince: number | undefined;
  private lastTick: number;
  /** Freezes are detected only once something calls tick() regularly (the control-plane observer). */
  private ticking = false;
  private wave: ReturnWave | undefined;

  constructor(
    private readonly offlineAfterMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.lastTick = this.ms();
  }

  record(heartbeat: Heartbeat): void {
    this.checkStall();
    const now = this.ms();
    this.entries.set(heartbeat.nodeId, { lastSeen: now, heartbeat, graceFrom: undefined });
    this.heard.add(heartbeat.nodeId);
    const wave = this.currentWave(now);
    if (wave?.awaiting.delete(heartbeat.nodeId)) wave.lastReturn = Math.max(wave.lastReturn, now);
  }

  /** The nodes heard from or seeded since the last call (and forgets them). */
  takeHeard(): Set<string> {
    const heard = this.heard;
    this.heard = new Set();
    return heard;
  }

  /**
   * When an online node turns offline unless it reports (ms since epoch, as of now: a heartbeat or
   * regained sight only moves it later); undefined for a node without an entry.
   */
  offlineAt(nodeId: string): number | undefined {
    const e = this.entries.get(nodeId);
    return e && this.reference(nodeId, e, this.ms()) + this.offlineAfterMs;
  }

  /**
   * Start from a stored judgement (a controller starting, or a new leader): an online node gets a
   * whole offline period from now to report, an offline one stays offline. Ignored for a node this
   * controller has already heard from.
   */
  seed(nodeId: string, stored: { status: "online" | "offline"; lastSeen: string }): void {
    if (this.entries.has(nodeId)) return;
    const lastSeen = Date.parse(stored.lastSeen);
    if (!Number.isFinite(lastSeen)) return;
    const now = this.ms();
    const online = stored.status === "online";
    this.entries.set(nodeId, { lastSeen, heartbeat: undefined, graceFrom: online ? now : undefined });
    this.heard.add(nodeId);
    if (online) this.awaitReturn([nodeId], now);
  }

  forget(nodeId: string): void {
    this.entries.delete(nodeId);
    this.heard.delete(nodeId);
    this.wave?.awaiting.delete(nodeId);
  }

  /** The last heartbeat this controller received from `nodeId`. */
  heartbeat(nodeId: string): Heartbeat | undefined {
    return this.entries.get(nodeId)?.heartbeat;
  }

  get(nodeId: string): LivenessEntry | undefined {
    const e = this.entries.get(nodeId);
    return e && { lastSeen: new Date(e.lastSeen), heartbeat: e.heartbeat };
  }

  /** Ids of every node with an entry. */
  nodeIds(): string[] {
    return [...this.entries.keys()];
  }

  status(nodeId: string): LivenessStatus {
    this.checkStall();
    const e = this.entries.get(nodeId);
    if (!e) return "never-seen";
    return this.statusAt(nodeId, e, this.blindSince ?? this.ms());
  }

  /** Whether the controller cannot currently see heartbeats. */
  get blind(): boolean {
    return this.blindSince !== undefined;
  }

  /** The controller stopped seeing (its NATS connection dropped or stopped answering) at `at` (default now). */
  blindFrom(at: number = this.ms()): void {
    this.checkStall();
    if (this.blindSince === undefined || at < this.blindSince) this.blindSince = at;
  }

  /** The controller sees again: every node online when blindness began gets a whole offline period from now. */
  sight(): void {
    this.checkStall();
    if (this.blindSince === undefined) return;
    const from = this.blindSince;
    this.blindSince = undefined;
    this.grace(from, this.ms());
  }

  /** Called about every second; a long gap since the last call (or status read) is a freeze, blind for its length. */
  tick(): void {
    this.ticking = true;
    this.checkStall();
  }

  private checkStall(): void {
    const now = this.ms();
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (!this.ticking || gap <= STALL_MS || this.blindSince !== undefined) return;
    this.grace(now - gap, now);
  }

  /** Every node online at `from` gets a whole offline period from `now`, and joins the return wave. */
  private grace(from: number, now: number): void {
    const given: string[] = [];
    for (const [nodeId, e] of this.entries) {
      if (this.statusAt(nodeId, e, from) !== "online") continue;
      e.graceFrom = now;
      given.push(nodeId);
    }
    this.awaitReturn(given, now);
  }

  private awaitReturn(nodeIds: readonly string[], now: number): void {
    if (nodeIds.length === 0) return;
    const wave = this.currentWave(now);
    const until = now + RETURN_WAVE_MAX_PERIODS * this.offlineAfterMs;
    if (!wave) {
      this.wave = { awaiting: new Set(nodeIds), lastReturn: now, until };
      return;
    }
    for (const nodeId of nodeIds) wave.awaiting.add(nodeId);
    wave.lastReturn = Math.max(wave.lastReturn, now);
    wave.until = Math.max(wave.until, until);
  }

  /**
   * The return wave still going at `now`, or undefined. One that ended (everyone back, a whole
   * period with no return, or past its limit) leaves the silent nodes their grace as it stood.
   */
  private currentWave(now: number): ReturnWave | undefined {
    const wave = this.wave;
    if (!wave) return undefined;
    const from = Math.min(wave.lastReturn, wave.until);
    if (wave.awaiting.size > 0 && now - from <= this.offlineAfterMs && now <= wave.until) return wave;
    for (const nodeId of wave.awaiting) {
      const e = this.entries.get(nodeId);
      if (e) e.graceFrom = Math.max(e.graceFrom ?? 0, from);
    }
    this.wave = undefined;
    return undefined;
  }

  /** Silence counts from the later of the last heartbeat and the grace (which a return wave moves on). */
  private reference(nodeId: string, e: Entry, now: number): number {
    const wave = this.currentWave(now);
    const grace = wave?.awaiting.has(nodeId) ? Math.max(e.graceFrom ?? 0, Math.min(wave.lastReturn, wave.until)) : (e.graceFrom ?? 0);
    return Math.max(e.lastSeen, grace);
  }

  private statusAt(nodeId: string, e: Entry, at: number): LivenessStatus {
    return at - this.reference(nodeId, e, at) <= this.offlineAfterMs ? "online" : "offline";
  }

  private ms(): number {
    return this.now().getTime();
  }
}
