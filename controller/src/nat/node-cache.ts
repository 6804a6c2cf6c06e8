/**
 * The node records as the path coordinator reads them every tick: the controller's shared mirror
 * of the nodes bucket (store/mirror.ts), and, kept by key as records come and go, the nodes path
 * coordination is about (`traversal()`): those without a public endpoint and relays, so a
 * coordinator tick need not look at the fleet. `version` is bumped on every change so a reader
 * can tell whether anything moved since its last look.
 */
import type { NodeRecord } from "@weft/protocol";
import type { NodeMirror } from "../store/mirror.js";
import { isRelay } from "./coordinator.js";

export class NodeCache {
  /** Nodes without a public endpoint or labelled relays (see traversal()). */
  readonly #traversal = new Map<string, NodeRecord>();
  #unlisten: (() => void) | undefined;
  /** Bumped on every change. */
  version = 0;

  constructor(private readonly nodes: NodeMirror) {}

  /** Follows the mirror's changes; the current records are in from the start. */
  start(): void {
    this.#unlisten = this.nodes.listen((nodeId) => this.#note(nodeId));
    for (const nodeId of this.nodes.entries.keys()) this.#note(nodeId);
  }

  stop(): void {
    this.#unlisten?.();
  }

  get(nodeId: string): NodeRecord | undefined {
    return this.nodes.entries.get(nodeId);
  }

  list(): NodeRecord[] {
    return [...this.nodes.entries.values()];
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

  #note(nodeId: string): void {
    this.version++;
    const node = this.nodes.entries.get(nodeId);
    if (node && (node.endpoints.public === undefined || isRelay(node.labels))) this.#traversal.set(nodeId, node);
    else this.#traversal.delete(nodeId);
  }
}
