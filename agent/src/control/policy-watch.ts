/**
 * Watches this node's compiled policy: the key `<nodeId>` of `weft-node-policies`,
 * the only key of that bucket an agent may read.
 *
 * An agent may create no consumer at all, so there is no kv.watch() here. Instead: a core subscription on `$KV.weft-node-policies.<nodeId>` (the
 * subject every put and delete of the key is published on) tells us that the key
 * changed, and a direct get of the key's last message (`$JS.API.DIRECT.GET.
 * KV_weft-node-policies.$KV.weft-node-policies.<nodeId>`) reads the value with
 * its revision (stream sequence). A notification carries no revision, so each
 * one triggers a get; gets are coalesced (at most one in flight, one queued: SingleFlight).
 *
 * `onRecord` is called with strictly increasing revisions only: the record, or
 * null when the key does not exist or was deleted. The first successful read
 * always reports (null, 0) when there is no key yet. A record that does not parse,
 * or names another node, is logged and never applied (the last good one stays).
 * Limit: a bucket recreated from scratch restarts revisions at 1; restart the agent.
 *
 * A large policy comes in chunks (`<nodeId>.0`, `<nodeId>.1`, …, read with the same
 * direct get): the controller writes them before the record that names their count
 * and digest. The record is reported with every chunk's entries joined, and only
 * when each chunk carries the record's digest and the joined entries hash to it:
 * all of one compilation or nothing. A chunk of another compilation means the
 * controller is writing a newer one; its record's notification reads again.
 */
import { createHash } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { AnyNodePolicyRecord, Buckets, NodePolicyChunk, nodePolicyChunkKey, type CompactPolicyEntry, type Logger, type NodePolicyRecord } from "@weft/protocol";
import { SingleFlight } from "@weft/util";

export type NodePolicyListener = (record: NodePolicyRecord | null, revision: number) => void;

/** The core subject every write of `nodeId`'s key is published on. */
export function nodePolicySubject(nodeId: string): string {
  return `$KV.${Buckets.nodePolicies}.${nodeId}`;
}

export class NodePolicyWatch {
  private sub: Subscription | undefined;
  private kv: KV | undefined;
  /** Highest revision reported to onRecord; -1 before the first report. */
  private revision = -1;
  /** One get at a time; a request during a get runs one more get after it. */
  private readonly reads = new SingleFlight(() => this.readOnce());
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly nodeId: string,
    private readonly onRecord: NodePolicyListener,
    private readonly log: Logger,
  ) {}

  /** Subscribe first (so no change between the read and the subscription is missed), then read. */
  async start(): Promise<void> {
    this.stopped = false;
    // allow_direct: read with DIRECT.GET (the subject names the key, so permissions can confine it).
    this.kv ??= await new Kvm(this.nc).open(Buckets.nodePolicies, { allow_direct: true });
    if (!this.sub || this.sub.isClosed()) {
      this.sub = this.nc.subscribe(nodePolicySubject(this.nodeId), {
        callback: (err) => {
          if (err) {
            this.log.warn({ node: this.nodeId, err }, "node policy subscription failed");
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
    void this.read().catch((err: unknown) => this.log.warn({ node: this.nodeId, err }, "cannot read the node policy; waiting for the next change or resync"));
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
    const parsed = AnyNodePolicyRecord.safeParse(json);
    if (!parsed.success || parsed.data.nodeId !== this.nodeId) {
      this.log.warn(
        { node: this.nodeId, revision: entry.revision, problem: parsed.success ? `record names node ${parsed.data.nodeId}` : parsed.error.issues[0]?.message },
        "ignoring malformed node policy record; keeping the last applied one",
      );
      return;
    }
    const record = parsed.data.chunks ? await this.joinChunks(kv, parsed.data, entry.revision) : parsed.data;
    if (!record || this.stopped) return;
    this.report(record, entry.revision);
  }

  /** The record with its chunks' entries joined, or undefined when the chunks are not all of its compilation. */
  private async joinChunks(kv: KV, record: NodePolicyRecord, revision: number): Promise<NodePolicyRecord | undefined> {
    const { count, digest } = record.chunks!;
    const entries: CompactPolicyEntry[] = [];
    for (let i = 0; i < count; i++) {
      const got = await kv.get(nodePolicyChunkKey(this.nodeId, i));
      let json: unknown;
      try {
        json = got?.operation === "PUT" ? got.json() : undefined;
      } catch {
        json = undefined;
      }
      const chunk = NodePolicyChunk.safeParse(json);
      if (!chunk.success || chunk.data.nodeId !== this.nodeId || chunk.data.index !== i || chunk.data.digest !== digest) {
        this.log.info({ node: this.nodeId, revision, chunk: i, of: count }, "node policy chunk is not of this compilation (a newer one is being written); waiting for its record");
        return undefined;
      }
      entries.push(...chunk.data.entries);
    }
    if (createHash("sha256").update(JSON.stringify(entries)).digest("hex") !== digest) {
      this.log.warn({ node: this.nodeId, revision }, "node policy chunks do not hash to their record's digest; keeping the last applied policy");
      return undefined;
    }
    const { chunks: _chunks, ...rest } = record;
    return { ...rest, entries };
  }

  private report(record: NodePolicyRecord | null, revision: number): void {
    this.revision = revision;
    try {
      this.onRecord(record, revision);
    } catch (err) {
      this.log.error({ node: this.nodeId, revision, err }, "node policy listener threw");
    }
  }
}
