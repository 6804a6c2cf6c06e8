/**
 * Liveness in the store (`weft-liveness`, one key per node id): the leader's judgement of each
 * node, written when it changes (online ↔ offline) and otherwise refreshed at most every
 * `refreshMs`, so a new leader or a restarted controller starts from it instead of from nothing.
 * `LivenessRecorder` is the bucket's only writer and runs only in the leader (a duty).
 */
import { z } from "zod";
import type { Logger } from "pino";
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
  liveness: Pick<Liveness, "status" | "get" | "nodeIds" | "forget" | "blind">;
  /** Node ids that exist (the registry). */
  nodeIds: () => Promise<string[]>;
  /** Still the leader? Checked before every write. */
  fence: () => boolean;
  checkMs: number;
  /** Refresh an unchanged record this often. Default 10 min. */
  refreshMs?: number;
  log: Logger;
}

export class LivenessRecorder {
  private written = new Map<string, { status: string; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  private passes = 0;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly o: LivenessRecorderOptions) {}

  async start(): Promise<void> {
    this.written = new Map((await this.o.store.list()).map((r) => [r.key, { status: r.value.status, at: Date.parse(r.value.judgedAt) || 0 }]));
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

  /** One pass: write changed judgements; every 60 passes drop the records (and entries) of deleted nodes. */
  async pass(): Promise<void> {
    if (this.o.liveness.blind) return;
    const refreshMs = this.o.refreshMs ?? 10 * 60_000;
    const now = Date.now();
    for (const nodeId of this.o.liveness.nodeIds()) {
      const status = this.o.liveness.status(nodeId);
      const entry = this.o.liveness.get(nodeId);
      if (status === "never-seen" || !entry) continue;
      const was = this.written.get(nodeId);
      if (was && was.status === status && now - was.at < refreshMs) continue;
      if (!this.o.fence()) return;
      await this.o.store.put(nodeId, { status, lastSeen: entry.lastSeen.toISOString(), judgedAt: new Date(now).toISOString() });
      this.written.set(nodeId, { status, at: now });
      if (was && was.status !== status) this.o.log.info({ node: nodeId, status }, `node is ${status}`);
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
