/**
 * Watches the peers bucket: a full snapshot first, then one update per change.
 * Emits the whole current peer set after the snapshot and after every change,
 * with the highest revision seen. Removals are only reported once a snapshot
 * is complete, so a half-delivered snapshot never deletes a peer.
 * `restart()` re-reads from scratch (used after a reconnect to resync). A watch the
 * server ends is reported to `onEnded`: its owner restarts it (the agent's NATS session
 * does, with backoff).
 */
import { Kvm, type KV, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, PeerRecord } from "@weft/protocol";
import type { Logger } from "pino";

export interface PeerSet {
  peers: Map<string, PeerRecord>;
  revision: number;
}

export type PeerSetListener = (set: PeerSet) => void;

export class PeerWatch {
  private iter: AsyncIterable<KvWatchEntry> & { stop(): void } | undefined;
  private generation = 0;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly onSet: PeerSetListener,
    private readonly log: Logger,
    /** Called when the watch ends without stop() or restart(). */
    private readonly onEnded: () => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    const generation = ++this.generation;
    this.iter?.stop();
    const kv = await new Kvm(this.nc).open(Buckets.peers);
    const empty = (await kv.status()).values === 0;
    const iter = await kv.watch({ key: ">" });
    if (generation !== this.generation || this.stopped) {
      iter.stop();
      return;
    }
    this.iter = iter;
    void this.consume(kv, iter, generation, empty);
  }

  /** Drop the current view and resync from a fresh snapshot. */
  async restart(): Promise<void> {
    if (!this.stopped) await this.start();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    this.iter?.stop();
  }

  private async consume(_kv: KV, iter: AsyncIterable<KvWatchEntry>, generation: number, empty: boolean): Promise<void> {
    const peers = new Map<string, PeerRecord>();
    let revision = 0;
    let initialized = empty;
    if (initialized) this.onSet({ peers: new Map(peers), revision });
    try {
      for await (const e of iter) {
        if (generation !== this.generation) return;
        revision = Math.max(revision, e.revision);
        if (e.operation === "PUT") {
          const parsed = PeerRecord.safeParse(safeJson(e));
          if (parsed.success && parsed.data.nodeId === e.key) peers.set(e.key, parsed.data);
          else this.log.warn({ peer: e.key, revision: e.revision }, "ignoring invalid peer record");
        } else {
          peers.delete(e.key);
        }
        if (!initialized && e.isUpdate) initialized = true;
        if (initialized) this.onSet({ peers: new Map(peers), revision });
      }
    } catch (err) {
      this.log.warn({ err }, "peer watch failed");
    }
    if (generation === this.generation && !this.stopped) {
      this.log.warn("peer watch ended; restarting");
      this.onEnded();
    }
  }
}

function safeJson(e: KvWatchEntry): unknown {
  try {
    return e.json();
  } catch {
    return undefined;
  }
}
