/**
 * Every node record, kept in memory from a watch of the nodes bucket (its current values, then
 * each change), so the path coordinator reads the fleet every tick without reading KV. Records
 * that do not parse are skipped (the registry logs them when it reads them). `changed` is bumped
 * on every change so a reader can tell whether anything moved since its last look.
 */
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { NodeRecord } from "@weft/protocol";
import type { Logger } from "pino";

type Stoppable = AsyncIterable<KvWatchEntry> & { stop(): void };

export class NodeCache {
  readonly #nodes = new Map<string, NodeRecord>();
  #watch: Stoppable | undefined;
  #stopped = false;
  /** Bumped on every change. */
  version = 0;

  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  /** Starts the watch and resolves once the current records are in. */
  async start(): Promise<void> {
    this.#watch = (await this.kv.watch()) as Stoppable;
    let ready: () => void = () => undefined;
    const loaded = new Promise<void>((r) => (ready = r));
    const status = await this.kv.status();
    if (status.values === 0) ready();
    void (async () => {
      try {
        for await (const e of this.#watch!) {
          this.#note(e);
          if (e.delta === 0) ready();
        }
      } catch (err) {
        if (!this.#stopped) this.log.warn({ err }, "watching node records failed; paths use what was read");
      } finally {
        ready();
      }
    })();
    await loaded;
  }

  stop(): void {
    this.#stopped = true;
    this.#watch?.stop();
  }

  get(nodeId: string): NodeRecord | undefined {
    return this.#nodes.get(nodeId);
  }

  list(): NodeRecord[] {
    return [...this.#nodes.values()];
  }

  #note(e: KvWatchEntry): void {
    this.version++;
    if (e.operation !== "PUT") {
      this.#nodes.delete(e.key);
      return;
    }
    try {
      const parsed = NodeRecord.safeParse(e.json());
      if (parsed.success) this.#nodes.set(e.key, parsed.data);
    } catch {
      // not JSON: skipped
    }
  }
}
