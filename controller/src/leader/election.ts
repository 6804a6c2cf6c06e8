/**
 * Leader election through the store: every controller runs one `LeaderElection` on the
 * `weft-leader` bucket (lease.ts decides, this shell reads and writes). The leader runs the
 * registered duties — the singleton work — and stops them when it steps down: when a renewal loses
 * the compare-and-set (another controller took the lease), when it cannot renew before its lease
 * ends (it lost the store: a partition, NATS down), or when it stops (it releases the lease so
 * another takes over at once). `isLeader()` is the fence every singleton write checks.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets } from "@weft/protocol";
import type { Logger } from "pino";
import { isRevisionConflict } from "../store/kv.js";
import { LEASE_KEY, LeaseRecord, actUntil, followerTick, type LeaseRead, type Observation } from "./lease.js";

/** A piece of singleton work: started when this controller becomes leader, stopped when it steps down. */
export interface Duty {
  name: string;
  start(term: number): Promise<void> | void;
  stop(): Promise<void> | void;
}

export interface LeaderElectionOptions {
  nc: NatsConnection;
  /** Lease length (default 6000 ms): a dead leader is replaced within about this plus one tick. */
  leaseMs?: number;
  /** This controller's REST API, written into the lease for "ask the leader" answers (may be set later: `api`). */
  api?: string;
  /** Unique name of this controller (default host-pid-random). */
  id?: string;
  log: Logger;
}

export interface LeaderInfo {
  holder: string;
  term: number;
  api: string | undefined;
}

const SAFETY_MARGIN_FRACTION = 1 / 6;
/** Pause between first attempts at start that failed with nobody else holding the lease. */
const START_RETRY_MS = 100;

export class LeaderElection {
  readonly id: string;
  /** This controller's REST API, written into the lease with the next renewal. */
  api: string | undefined;
  private readonly leaseMs: number;
  private readonly tickMs: number;
  private readonly renewMs: number;
  private readonly duties: Duty[] = [];
  private kv: KV | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Fires when the held lease runs out unrenewed (see armExpiry). */
  private expiry: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  /** Leader state: the revision of our last write, the term, and until when we may act. */
  private held: { revision: number; term: number; until: number; renewedAt: number } | undefined;
  private seen: Observation | undefined;
  private last: LeaseRecord | undefined;
  /** Duties are started and stopped one transition at a time. */
  private transitions: Promise<void> = Promise.resolve();
  private dutiesRunning = false;
  /** untilLeading() calls waiting: told true when this controller takes the lease, false when it stops or another holds it. */
  private readonly waiters = new Set<(leads: boolean) => void>();

  constructor(private readonly o: LeaderElectionOptions) {
    this.api = o.api;
    this.id = o.id ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    this.leaseMs = o.leaseMs ?? 6000;
    this.tickMs = Math.max(100, Math.floor(this.leaseMs / 6));
    this.renewMs = Math.max(100, Math.floor(this.leaseMs / 3));
  }

  /** Work that runs only in the leader. Register before `start()`. */
  duty(d: Duty): void {
    this.duties.push(d);
  }

  /**
   * Opens the bucket and takes part. The first attempt runs before this resolves, and is repeated
   * (every START_RETRY_MS, for up to two leases) while it fails with nobody else holding the lease —
   * a read or a take that timed out on a busy store: a controller that can lead at once (no lease,
   * a released one, or its own) has its duties running by then.
   */
  async start(): Promise<void> {
    // A short request timeout: a renewal that cannot finish well inside the lease is a lost one.
    const js = jetstream(this.o.nc, { timeout: Math.max(500, Math.floor(this.leaseMs / 4)) });
    this.kv = await new Kvm(js).open(Buckets.leader);
    const deadline = performance.now() + 2 * this.leaseMs;
    for (;;) {
      await this.serially(() => this.tick());
      if (this.held || this.stopped || this.heldByAnother() || performance.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, START_RETRY_MS));
    }
    // Renewals run from now on, not after the duties started: a slow duty start (a first inventory
    // sync on a busy machine) must not let the lease run out.
    this.schedule(this.held ? this.renewMs : this.tickMs);
    await this.transitions;
  }

  /** True while this controller holds a valid lease: check it right before every singleton write. */
  isLeader(): boolean {
    return this.held !== undefined && performance.now() < this.held.until;
  }

  get term(): number | undefined {
    return this.isLeader() ? this.held?.term : undefined;
  }

  /**
   * The lease holder as last read: this controller while it leads, else another controller, or
   * undefined when none is known to lead (no lease, a released one, or this controller's own
   * lapsed one, which it takes back at its next tick).
   */
  leader(): LeaderInfo | undefined {
    if (this.isLeader()) return { holder: this.id, term: this.held!.term, api: this.api };
    if (!this.heldByAnother()) return undefined;
    return { holder: this.last!.holder, term: this.last!.term, api: this.last!.api };
  }

  /**
   * Resolves true once this controller leads — at once if it does — or false: when another
   * controller holds the lease as read now (ask that one), else after `timeoutMs` (default one
   * lease) without leading. For a request asked of a controller that is about to lead — a single
   * controller just started, one taking its own lapsed lease back, or a follower whose leader just
   * released the lease — which answers instead of refusing. A follower reads the lease at once
   * (an extra tick) rather than answer from a read up to a tick old.
   */
  async untilLeading(timeoutMs = this.leaseMs): Promise<boolean> {
    if (this.isLeader()) return true;
    if (this.stopped || !this.kv) return false;
    await this.serially(() => (this.held || this.stopped ? undefined : this.follow()));
    if (this.isLeader()) return true;
    if (this.stopped || this.heldByAnother()) return false;
    return new Promise((resolve) => {
      const waiter = (leads: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(leads);
      };
      const timer = setTimeout(() => waiter(this.isLeader()), timeoutMs);
      timer.unref();
      this.waiters.add(waiter);
    });
  }

  /** Resolves when the duty transitions asked for so far are done (tests). */
  settled(): Promise<void> {
    return this.transitions;
  }

  /** Steps down (stopping the duties) and releases the lease so another controller leads at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.tell(false);
    await this.running;
    const held = this.held;
    this.stepDown("stopping");
    await this.transitions;
    if (held && this.kv) {
      const record: LeaseRecord = { holder: this.id, term: held.term, renewedAt: new Date().toISOString(), released: true, ...(this.api ? { api: this.api } : {}) };
      await this.kv.update(LEASE_KEY, JSON.stringify(record), held.revision).catch((err: unknown) => this.o.log.warn({ err }, "leader: cannot release the lease; another controller takes over when it runs out"));
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.serially(() => this.tick())
        .catch((err: unknown) => this.o.log.warn({ err }, "leader: a tick failed"))
        .finally(() => this.schedule(this.held ? Math.min(this.renewMs, Math.max(0, this.held.until - performance.now())) : this.tickMs));
    }, ms);
    this.timer.unref();
  }

  /** Runs `step` after every tick before it (ticks never overlap; stop() waits for the last). */
  private serially(step: () => Promise<void> | undefined): Promise<void> {
    const next = this.running.then(step);
    this.running = next.catch(() => undefined);
    return next;
  }

  private async tick(): Promise<void> {
    if (this.held) return this.renew();
    return this.follow();
  }

  private async renew(): Promise<void> {
    const held = this.held!;
    if (performance.now() >= held.until) {
      this.stepDown("could not renew the lease before it ran out (store unreachable?)");
      return;
    }
    const sentAt = performance.now();
    const record: LeaseRecord = { holder: this.id, term: held.term, renewedAt: new Date().toISOString(), ...(this.api ? { api: this.api } : {}) };
    try {
      const revision = await this.kv!.update(LEASE_KEY, JSON.stringify(record), held.revision);
      if (this.held !== held) return;
      this.held = { ...held, revision, until: actUntil(sentAt, this.leaseMs, this.leaseMs * SAFETY_MARGIN_FRACTION), renewedAt: sentAt };
      this.armExpiry();
      this.last = record;
    } catch (err) {
      if (isRevisionConflict(err)) this.stepDown("another controller took the lease");
      else if (performance.now() >= held.until) this.stepDown("could not renew the lease before it ran out (store unreachable?)");
      else this.o.log.warn({ err, term: held.term }, "leader: lease renewal failed; retrying while the lease lasts");
    }
  }

  private async follow(): Promise<void> {
    let read: LeaseRead;
    try {
      const entry = await this.kv!.get(LEASE_KEY);
      if (!entry) read = { kind: "absent" };
      else if (entry.operation !== "PUT") read = { kind: "absent", revision: entry.revision };
      else {
        const parsed = LeaseRecord.safeParse(entry.json());
        // A record that does not parse is nobody's lease: treat it as held (wait a lease, then take it over).
        read = { kind: "held", record: parsed.success ? parsed.data : { holder: "?", term: 1, renewedAt: "" }, revision: entry.revision };
        if (parsed.success) this.last = parsed.data;
      }
    } catch (err) {
      this.o.log.debug({ err }, "leader: cannot read the lease");
      return;
    }
    const now = performance.now();
    const decision = followerTick(read, this.seen, now, this.leaseMs, this.id);
    if (decision.action === "wait") {
      this.seen = decision.observation;
      if (this.heldByAnother()) this.tell(false);
      return;
    }
    const record: LeaseRecord = { holder: this.id, term: decision.term, renewedAt: new Date().toISOString(), ...(this.api ? { api: this.api } : {}) };
    const sentAt = performance.now();
    try {
      const body = JSON.stringify(record);
      const revision = decision.revision === undefined ? await this.kv!.create(LEASE_KEY, body) : await this.kv!.update(LEASE_KEY, body, decision.revision);
      this.held = { revision, term: decision.term, until: actUntil(sentAt, this.leaseMs, this.leaseMs * SAFETY_MARGIN_FRACTION), renewedAt: sentAt };
      this.armExpiry();
      this.last = record;
      this.seen = undefined;
      this.o.log.info({ term: decision.term, leader: this.id, previous: read.kind === "held" ? read.record.holder : undefined }, "this controller is now the leader");
      this.transition("start", decision.term);
      this.tell(true);
    } catch (err) {
      if (!isRevisionConflict(err)) this.o.log.debug({ err }, "leader: cannot take the lease");
      this.seen = undefined; // someone else wrote: watch the new revision for a whole lease
    }
  }

  /**
   * Steps down the moment the held lease runs out unrenewed. isLeader() already fences every write
   * at that moment; this stops the duties (and says so in the log) then too, not only when a renewal
   * still in flight gives up (up to its request timeout later).
   */
  private armExpiry(): void {
    clearTimeout(this.expiry);
    const held = this.held;
    if (!held) return;
    this.expiry = setTimeout(() => {
      if (this.held === held) this.stepDown("could not renew the lease before it ran out (store unreachable?)");
    }, Math.max(0, held.until - performance.now()));
    this.expiry.unref();
  }

  /** Another controller holds the lease as last read (not released, not this controller's own). */
  private heldByAnother(): boolean {
    return this.last !== undefined && !this.last.released && this.last.holder !== this.id;
  }

  private tell(leads: boolean): void {
    for (const w of [...this.waiters]) w(leads);
  }

  private stepDown(why: string): void {
    clearTimeout(this.expiry);
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    this.seen = undefined;
    this.o.log.warn({ term: held.term, leader: this.id }, `this controller is no longer the leader: ${why}`);
    this.transition("stop", held.term);
  }

  private transition(to: "start" | "stop", term: number): void {
    this.transitions = this.transitions.then(async () => {
      if (to === "start") {
        if (this.dutiesRunning || !this.isLeader()) return;
        this.dutiesRunning = true;
        for (const d of this.duties) {
          try {
            await d.start(term);
          } catch (err) {
            this.o.log.error({ err, duty: d.name, term }, "leader: a duty failed to start");
          }
        }
      } else {
        if (!this.dutiesRunning) return;
        this.dutiesRunning = false;
        for (const d of [...this.duties].reverse()) {
          try {
            await d.stop();
          } catch (err) {
            this.o.log.error({ err, duty: d.name, term }, "leader: a duty failed to stop");
          }
        }
      }
    });
  }
}
