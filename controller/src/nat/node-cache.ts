/**
 * Every node record, kept in memory from a watch of the nodes bucket (its current values, then
 * each change), so the path coordinator reads the fleet every tick without reading KV. Records
 * that do not parse are skipped (the registry logs them when it reads them). `changed` is bumped
 * on every change so a reader can tell whether anything moved since its last look. It also keeps,
 * by key as records come and go, the nodes path coordination is about (`traversal()`): those
 * without a public endpoint and relays, so a coordinator tick need not list the fleet.
 */
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { NodeRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { isRelay } from "./coordinator.js";

type Stoppable = AsyncIterable<KvWatchEntry> & { stop(): void };

export class NodeCache {
  readonly #nodes = new Map<string, NodeRecord>();
  /** Nodes without a public endpoint or labelled relays (see traversal()). */
  readonly #traversal = new Map<string, NodeRecord>();
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

  /** The nodes that may need NAT traversal (no public endpoint) and the relays: what path planning is about. */
  traversal(): NodeRecord[] {
    return [...this.#traversal.values()];
  }

  /** Whether any node lacks a public endpoint. */
  get anyNatted(): boolean {
    for (const n of this.#traversal.values()) if (n.endpoints.public === undefined) return true;
    return false;
  }

  #note(e: KvWatchEntry): void {
    this.version++;
    if (e.operation !== "PUT") {
      this.#nodes.delete(e.key);
      this.#traversal.delete(e.key);
      return;
    }
    try {
      const parsed = NodeRecord.safeParse(e.json());
      if (!parsed.success) return;
      this.#nodes.set(e.key, parsed.data);
      if (parsed.data.endpoints.public === undefined || isRelay(parsed.data.labels)) this.#traversal.set(e.key, parsed.data);
      else this.#traversal.delete(e.key);
    } catch {
      // not JSON: skipped
    }
  }
}
