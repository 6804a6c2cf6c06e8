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

export class Liveness {
  private readonly entries = new Map<string, Entry>();
  /** Nodes heard from (or seeded) since the last takeHeard(): what the liveness recorder looks at first. */
  private heard = new Set<string>();
  /** Since when the controller cannot see (undefined: it can). */
  private blindSince: number | undefined;
  private lastTick: number;
  /** Freezes are detected only once something calls tick() regularly (the control-plane observer). */
  private ticking = false;

  constructor(
    private readonly offlineAfterMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.lastTick = this.ms();
  }

  record(heartbeat: Heartbeat): void {
    this.checkStall();
    this.entries.set(heartbeat.nodeId, { lastSeen: this.ms(), heartbeat, graceFrom: undefined });
    this.heard.add(heartbeat.nodeId);
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
    return e && Math.max(e.lastSeen, e.graceFrom ?? 0) + this.offlineAfterMs;
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
    this.entries.set(nodeId, { lastSeen, heartbeat: undefined, graceFrom: stored.status === "online" ? this.ms() : undefined });
    this.heard.add(nodeId);
  }

  forget(nodeId: string): void {
    this.entries.delete(nodeId);
    this.heard.delete(nodeId);
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
    return this.statusAt(e, this.blindSince ?? this.ms());
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
    const now = this.ms();
    for (const e of this.entries.values()) if (this.statusAt(e, from) === "online") e.graceFrom = now;
    this.blindSince = undefined;
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
    const from = now - gap;
    for (const e of this.entries.values()) if (this.statusAt(e, from) === "online") e.graceFrom = now;
  }

  private statusAt(e: Entry, at: number): LivenessStatus {
    const ref = Math.max(e.lastSeen, e.graceFrom ?? 0);
    return at - ref <= this.offlineAfterMs ? "online" : "offline";
  }

  private ms(): number {
    return this.now().getTime();
  }
}
