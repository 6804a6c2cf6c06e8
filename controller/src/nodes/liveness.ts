/**
 * Node liveness from heartbeats: the last heartbeat of every node, kept in
 * memory by the controller that receives them. A node is online while its
 * last heartbeat is younger than `offlineAfterMs`.
 */
import type { Heartbeat } from "@weft/protocol";

export interface LivenessEntry {
  lastSeen: Date;
  heartbeat: Heartbeat;
}

export type LivenessStatus = "online" | "offline" | "never-seen";

export class Liveness {
  private readonly entries = new Map<string, LivenessEntry>();

  constructor(
    private readonly offlineAfterMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  record(heartbeat: Heartbeat): void {
    this.entries.set(heartbeat.nodeId, { lastSeen: this.now(), heartbeat });
  }

  forget(nodeId: string): void {
    this.entries.delete(nodeId);
  }

  get(nodeId: string): LivenessEntry | undefined {
    return this.entries.get(nodeId);
  }

  /** The last heartbeat of every node heard from, by node id. */
  heartbeats(): Map<string, Heartbeat> {
    return new Map([...this.entries].map(([id, e]) => [id, e.heartbeat]));
  }

  status(nodeId: string): LivenessStatus {
    const entry = this.entries.get(nodeId);
    if (!entry) return "never-seen";
    return this.now().getTime() - entry.lastSeen.getTime() <= this.offlineAfterMs ? "online" : "offline";
  }
}
