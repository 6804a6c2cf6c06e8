/**
 * Liveness in the store (`weft-liveness`, one key per node id): the leader's judgement of each
 * node, written when it changes (online ↔ offline) and otherwise refreshed at most every
 * `refreshMs`, so a new leader or a restarted controller starts from it instead of from nothing.
 * `LivenessRecorder` is the bucket's only writer and runs only in the leader (a duty).
 */
import { z } from "zod";
import type { Logger } from "pino";
import type { ControllerCounters } from "../metrics/counters.js";
import type { RecordStore } from "../store/kv.js";
import type { Liveness } from "./liveness.js";

export const StoredLiveness = z
  .object({
    status: z.enum(["online", "offline"]),
    /** The last heartbeat the judging controller had (ISO time). */
    lastSeen: z.string().max(64),
    /** When the status was judged (ISO time). */
    judgedAt: z.string().max(64),
  })
  .strict();
export type StoredLiveness = z.infer<typeof StoredLiveness>;

/** Loads every stored judgement into `liveness` (at start, on every controller). Returns how many. */
export async function seedLiveness(store: RecordStore<typeof StoredLiveness>, liveness: Pick<Liveness, "seed">, log: Logger): Promise<number> {
  const all = await store.list(undefined, (key, err) => log.warn({ node: key, err }, "liveness: ignoring a stored record that does not parse"));
  for (const r of all) liveness.seed(r.key, r.value);
  return all.length;
}

export interface LivenessRecorderOptions {
  store: RecordStore<typeof StoredLiveness>;
  liveness: Pick<Liveness, "status" | "get" | "nodeIds" | "forget" | "blind" | "takeHeard" | "offlineAt">;
  /** Node ids that exist (the registry): read every 60 passes to drop the records of deleted nodes. */
  nodeIds: () => Promise<string[]>;
  /** Still the leader? Checked before every write. */
  fence: () => boolean;
  checkMs: number;
  /** Refresh an unchanged record this often. Default 10 min. */
  refreshMs?: number;
  /** Each change of a node's status is counted here. */
  counters?: Pick<ControllerCounters, "nodeStatusChanges">;
  log: Logger;
}

/**
 * Writes each node's judgement when it changes, and refreshes it every `refreshMs`. A pass looks
 * only at the nodes that need a look: those heard from (or seeded) since the last pass whose stored
 * status is not online yet, and those whose check falls due — an online node when it would turn
 * offline unless it reported (checked then: a later heartbeat only moves the check on), any node
 * when its record is due for a refresh. Checks wait in buckets of `checkMs` (a timing wheel), so a
 * pass costs the nodes it looks at, not the fleet.
 */
export class LivenessRecorder {
  private written = new Map<string, { status: string; at: number }>();
  /** Due checks: bucket (due time / checkMs) → nodes. */
  private due = new Map<number, Set<string>>();
  /** The bucket of each node's next check. */
  private dueBucket = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private passes = 0;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly o: LivenessRecorderOptions) {}

  async start(): Promise<void> {
    this.written = new Map((await this.o.store.list()).map((r) => [r.key, { status: r.value.status, at: Date.parse(r.value.judgedAt) || 0 }]));
    this.due.clear();
    this.dueBucket.clear();
    // Everything known is looked at once; from then on only what is heard or falls due.
    this.o.liveness.takeHeard();
    for (const nodeId of this.o.liveness.nodeIds()) this.schedule(nodeId, 0);
    this.passes = 0;
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.pass()).catch((err: unknown) => this.o.log.warn({ err }, "liveness: cannot record node liveness; retrying"));
    }, this.o.checkMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Nodes with a check waiting (tests, metrics). */
  get scheduled(): number {
    return this.dueBucket.size;
  }

  /** Checks `nodeId` at `at` (ms since epoch) or on the first pass after it, unless an earlier check waits. */
  private schedule(nodeId: string, at: number): void {
    // The first pass at or after `at` takes it.
    const bucket = Math.ceil(at / this.o.checkMs);
    const was = this.dueBucket.get(nodeId);
    if (was !== undefined && was <= bucket) return;
    if (was !== undefined) this.due.get(was)?.delete(nodeId);
    this.dueBucket.set(nodeId, bucket);
    let set = this.due.get(bucket);
    if (!set) this.due.set(bucket, (set = new Set()));
    set.add(nodeId);
  }

  /** The nodes whose check is due by `now`, taken off the wheel. */
  private takeDue(now: number): string[] {
    const upTo = Math.floor(now / this.o.checkMs);
    const out: string[] = [];
    for (const [bucket, set] of this.due) {
      if (bucket > upTo) continue;
      this.due.delete(bucket);
      for (const nodeId of set) {
        this.dueBucket.delete(nodeId);
        out.push(nodeId);
      }
    }
    return out;
  }

  /** One pass: write changed judgements; every 60 passes drop the records (and entries) of deleted nodes. */
  async pass(): Promise<void> {
    if (this.o.liveness.blind) return;
    const refreshMs = this.o.refreshMs ?? 10 * 60_000;
    const now = Date.now();
    const look = new Set(this.takeDue(now));
    for (const nodeId of this.o.liveness.takeHeard()) {
      // An online node reporting again changes nothing stored: its check waits on the wheel.
      if (this.written.get(nodeId)?.status !== "online" || !this.dueBucket.has(nodeId)) look.add(nodeId);
    }
    const pending = [...look];
    for (const [i, nodeId] of pending.entries()) {
      const status = this.o.liveness.status(nodeId);
      const entry = this.o.liveness.get(nodeId);
      if (status === "never-seen" || !entry) continue;
      const was = this.written.get(nodeId);
      if (!was || was.status !== status || now - was.at >= refreshMs) {
        if (!this.o.fence()) {
          // Not the leader any more: whoever starts this recorder again looks at everything.
          for (const rest of pending.slice(i)) this.schedule(rest, now);
          return;
        }
        await this.o.store.put(nodeId, { status, lastSeen: entry.lastSeen.toISOString(), judgedAt: new Date(now).toISOString() }).catch((err: unknown) => {
          // Looked at again on the next pass, with the ones not reached yet.
          for (const rest of pending.slice(i)) this.schedule(rest, now);
          throw err;
        });
        this.written.set(nodeId, { status, at: now });
        if (was && was.status !== status) {
          this.o.counters?.nodeStatusChanges.inc({ status });
          this.o.log.info({ node: nodeId, status }, `node is ${status}`);
        }
      }
      const refreshAt = (this.written.get(nodeId)?.at ?? now) + refreshMs;
      this.schedule(nodeId, status === "online" ? Math.min(this.o.liveness.offlineAt(nodeId) ?? now, refreshAt) : refreshAt);
    }
    if (this.passes++ % 60 !== 0) return;
    const exists = new Set(await this.o.nodeIds());
    for (const nodeId of new Set([...this.written.keys(), ...this.o.liveness.nodeIds()])) {
      if (exists.has(nodeId)) continue;
      this.o.liveness.forget(nodeId);
      if (!this.written.has(nodeId)) continue;
      if (!this.o.fence()) return;
      await this.o.store.delete(nodeId);
      this.written.delete(nodeId);
    }
  }
}
