/**
 * What the scale benchmark's coordinator (scale.ts) and its worker processes (scale-worker.ts)
 * say to each other over the fork IPC channel, and the probes: what "an agent has the change"
 * means, checked by each simulated agent on what its watchers delivered (pure).
 */

/** Everything a worker needs to enroll and run its agents. */
export interface FleetSpec {
  apiUrl: string;
  caHash: string;
  joinKey: string;
  /** First agent index of this worker and how many it runs. */
  first: number;
  count: number;
  /** How many of them (the lowest indexes) run the agent's full peers watch (PeerWatch: snapshot + view). */
  full: number;
  /** Enrollments (and first connects) in flight at once in this worker. */
  concurrency: number;
}

/** A condition on what one agent was delivered; the time it first holds is recorded. */
export type Probe =
  | { kind: "peerNamed"; name: string }
  | { kind: "peerGone"; nodeId: string }
  | { kind: "policyPort"; port: number }
  /** NATS said reconnected (after the probe was set). */
  | { kind: "reconnected" }
  /** Full agents: a peer set emitted after a reconnect (the watch resynced). Light agents: the policy read again. */
  | { kind: "resynced" };

export type ToWorker =
  | { type: "enroll"; spec: FleetSpec }
  | { type: "connect" }
  | { type: "probe"; id: number; probe: Probe }
  | { type: "collect"; id: number }
  | { type: "stats" }
  | { type: "stop" };

/** Per agent, ms since the epoch (performance.timeOrigin + performance.now()); NaN: not (yet). */
export type FromWorker =
  | { type: "enrolled"; times: number[]; failures: string[] }
  | { type: "connected"; startedAt: number[]; syncedAt: number[]; failures: string[] }
  | { type: "armed"; id: number }
  /** natsStates: how many agents' connections are in each state (connected, disconnected, …) now. */
  | { type: "probeDone"; id: number; times: number[]; reconnectedAt: number[]; natsStates: Record<string, number> }
  | { type: "collected"; id: number; times: number[]; reconnectedAt: number[]; natsStates: Record<string, number> }
  | { type: "stats"; inBytes: number; inMsgs: number; rssMb: number }
  | { type: "stopped" }
  | { type: "error"; message: string };

/** ms since the epoch with sub-ms precision, comparable across the benchmark's processes. */
export const now = (): number => performance.timeOrigin + performance.now();
