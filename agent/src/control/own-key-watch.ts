/**
 * Watches this node's own key of a per-node bucket (`weft-node-policies`, `weft-node-paths`):
 * the key `<nodeId>`, the only key of such a bucket an agent may read.
 *
 * nats-server 2.9 cannot confine a consumer to one key, so there is no kv.watch()
 * here. Instead: a core subscription on `$KV.<bucket>.<nodeId>` (the subject every
 * put and delete of the key is published on) tells us that the key changed, and a
 * direct get of the key's last message (`$JS.API.DIRECT.GET.KV_<bucket>.$KV.<bucket>.<nodeId>`)
 * reads the value with its revision (stream sequence). A notification carries no revision, so
 * each one triggers a get; gets are coalesced (at most one in flight, one queued: SingleFlight).
 *
 * `onRecord` is called with strictly increasing revisions only: the record, or
 * null when the key does not exist or was deleted. The first successful read
 * always reports (null, 0) when there is no key yet. A record that does not parse,
 * or names another node, is logged and never applied (the last good one stays).
 * Limit: a bucket recreated from scratch restarts revisions at 1; restart the agent.
 */
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "@weft/protocol";
import { SingleFlight } from "@weft/util";
import type { z } from "zod";

/** What the watch reads: a bucket, the schema of its records, and what the logs call a record. */
export interface OwnKeySpec<T extends { nodeId: string }> {
  bucket: string;
  schema: z.ZodType<T>;
  what: string;
}

export type OwnKeyListener<T> = (record: T | null, revision: number) => void;

/** The core subject every write of `nodeId`'s key of `bucket` is published on. */
export function ownKeySubject(bucket: string, nodeId: string): string {
  return `$KV.${bucket}.${nodeId}`;
}

export class OwnKeyWatch<T extends { nodeId: string }> {
  private sub: Subscription | undefined;
  private kv: KV | undefined;
  /** Highest revision reported to onRecord; -1 before the first report. */
  private revision = -1;
  /** One get at a time; a request during a get runs one more get after it. */
  private readonly reads = new SingleFlight(() => this.readOnce());
  private stopped = false;

  constructor(
    private readonly spec: OwnKeySpec<T>,
    private readonly nc: NatsConnection,
    private readonly nodeId: string,
    private readonly onRecord: OwnKeyListener<T>,
    private readonly log: Logger,
  ) {}

  /** Subscribe first (so no change between the read and the subscription is missed), then read. */
  async start(): Promise<void> {
    this.stopped = false;
    // allow_direct: read with DIRECT.GET (the subject names the key, so permissions can confine it).
    this.kv ??= await new Kvm(this.nc).open(this.spec.bucket, { allow_direct: true });
    if (!this.sub || this.sub.isClosed()) {
      this.sub = this.nc.subscribe(ownKeySubject(this.spec.bucket, this.nodeId), {
        callback: (err) => {
          if (err) {
            this.log.warn({ node: this.nodeId, err }, `${this.spec.what} subscription failed`);
            return;
          }
          this.schedule();
        },
      });
    }
    await this.read();
  }

  /** Read the key again (after a reconnect: changes made while disconnected were not seen). */
  async resync(): Promise<void> {
    if (this.stopped) return;
    if (!this.sub) return this.start();
    await this.read();
  }

  stop(): void {
    this.stopped = true;
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  /** The highest revision applied (0: no key yet; -1: nothing read yet). */
  get appliedRevision(): number {
    return this.revision;
  }

  private schedule(): void {
    void this.read().catch((err: unknown) => this.log.warn({ node: this.nodeId, err }, `cannot read the ${this.spec.what}; waiting for the next change or resync`));
  }

  private read(): Promise<void> {
    return this.reads.run();
  }

  private async readOnce(): Promise<void> {
    const kv = this.kv;
    if (!kv || this.stopped) return;
    const entry = await kv.get(this.nodeId);
    if (this.stopped) return;
    if (!entry) {
      // No key at all (never written): report once so the caller knows the state.
      if (this.revision < 0) this.report(null, 0);
      return;
    }
    if (entry.revision <= this.revision) return; // not newer (a stale replica or a repeat)
    if (entry.operation !== "PUT") {
      this.report(null, entry.revision);
      return;
    }
    let json: unknown;
    try {
      json = entry.json();
    } catch {
      json = undefined;
    }
    const parsed = this.spec.schema.safeParse(json);
    if (!parsed.success || parsed.data.nodeId !== this.nodeId) {
      this.log.warn(
        { node: this.nodeId, revision: entry.revision, problem: parsed.success ? `record names node ${parsed.data.nodeId}` : parsed.error.issues[0]?.message },
        `ignoring malformed ${this.spec.what} record; keeping the last applied one`,
      );
      return;
    }
    this.report(parsed.data, entry.revision);
  }

  private report(record: T | null, revision: number): void {
    this.revision = revision;
    try {
      this.onRecord(record, revision);
    } catch (err) {
      this.log.error({ node: this.nodeId, revision, err }, `${this.spec.what} listener threw`);
    }
  }
}
