/**
 * Heartbeats from agents on `weft.v1.node.*.heartbeat`: each valid one, on the node's own
 * subject, updates the node's liveness (memory; the leader stores changes, liveness-store.ts). The one thing in a heartbeat that peers need
 * is the interface epoch (peers behind NAT re-handshake when it changes); it is written to the
 * node record through the registry only when it differs from what was last written, and at most
 * once per `minWriteIntervalMs` per node (default 20 s: three a minute) whatever the agent sends —
 * the first change is written at once, later ones in the same interval wait and only the newest
 * is written when the interval ends (and nothing, when it is back to what is stored). Malformed
 * heartbeats, and heartbeats naming another node than their subject, are dropped, counted per
 * node and logged at most once per interval (malformed.ts).
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Heartbeat, Subjects, nodeIdFromSubject } from "@weft/protocol";
import type { Logger } from "pino";
import type { Liveness } from "./liveness.js";
import type { MalformedMessages } from "./malformed.js";
import type { NodeRegistry } from "./registry.js";

/** Shortest time between two epoch writes of one node. */
export const EPOCH_WRITE_INTERVAL_MS = 20_000;

/** Per node: what was last written, when, and the newest epoch waiting for the interval to end. */
export interface EpochState {
  written: string | undefined;
  writtenAt: number;
  pending: string | undefined;
}

/**
 * What to do with an epoch seen in a heartbeat at `now` (pure): write it now, hold it until
 * `at`, or nothing. A held epoch replaces an older held one.
 */
export function decideEpoch(state: EpochState | undefined, epoch: string, now: number, intervalMs: number): { action: "write" } | { action: "hold"; at: number } | { action: "none" } {
  if (!state) return { action: "write" };
  if (state.pending === undefined && epoch === state.written) return { action: "none" };
  if (now - state.writtenAt >= intervalMs) return { action: "write" };
  return { action: "hold", at: state.writtenAt + intervalMs };
}

export interface HeartbeatListenerOptions {
  liveness: Liveness;
  registry: Pick<NodeRegistry, "updateNode">;
  malformed: MalformedMessages;
  log: Logger;
  /** Default EPOCH_WRITE_INTERVAL_MS. */
  minWriteIntervalMs?: number;
  /** Whether this controller writes epochs (the leader); every controller records liveness. Default always. */
  writes?: () => boolean;
  /**
   * Told of every valid heartbeat after it is recorded (the console's liveness events). One
   * subscription serves every reader: the server sends a message once per matching subscription.
   */
  heard?: (nodeId: string) => void;
}

export interface HeartbeatListener {
  subscription: Subscription;
  /** Node record writes made for epochs so far. */
  readonly writes: number;
  stop(): void;
}

export function listenForHeartbeats(nc: NatsConnection, o: HeartbeatListenerOptions): HeartbeatListener {
  const { liveness, registry, malformed, log } = o;
  const intervalMs = o.minWriteIntervalMs ?? EPOCH_WRITE_INTERVAL_MS;
  const states = new Map<string, EpochState>();
  const timers = new Map<string, NodeJS.Timeout>();
  let writes = 0;

  const write = (nodeId: string, epoch: string) => {
    const state: EpochState = { written: epoch, writtenAt: Date.now(), pending: undefined };
    states.set(nodeId, state);
    writes++;
    registry
      .updateNode(nodeId, (node) => (node.sessionEpoch === epoch ? undefined : { ...node, sessionEpoch: epoch }))
      .then((got) => {
        if (got.outcome === "updated") log.info({ node: nodeId, epoch }, "node's WireGuard interface was recreated; peers will re-handshake");
        if (got.outcome === "gone") states.delete(nodeId);
        if (got.outcome === "unchanged" && states.get(nodeId) === state) {
          // Nothing was written (the record had this epoch: a new leader's first look), so no
          // interval starts: an interface recreated just after a leader change is written at once.
          state.writtenAt = -Infinity;
          if (state.pending !== undefined) {
            clearTimeout(timers.get(nodeId));
            flush(nodeId);
          }
        }
      })
      .catch((err: unknown) => {
        if (states.get(nodeId) === state) state.written = undefined; // try again with the next heartbeat after the interval
        log.warn({ node: nodeId, err }, "cannot record the node's session epoch");
      });
  };
  const flush = (nodeId: string) => {
    timers.delete(nodeId);
    const state = states.get(nodeId);
    const epoch = state?.pending;
    if (!state || epoch === undefined) return;
    state.pending = undefined;
    if (epoch !== state.written) write(nodeId, epoch);
  };
  const noteEpoch = (nodeId: string, epoch: string | undefined) => {
    if (epoch === undefined) return;
    const state = states.get(nodeId);
    const decision = decideEpoch(state, epoch, Date.now(), intervalMs);
    if (decision.action === "write") {
      write(nodeId, epoch);
    } else if (decision.action === "hold" && state) {
      state.pending = epoch;
      if (!timers.has(nodeId)) {
        const t = setTimeout(() => flush(nodeId), Math.max(0, decision.at - Date.now()));
        t.unref();
        timers.set(nodeId, t);
      }
    }
  };
  const subscription = nc.subscribe(Subjects.allHeartbeats, {
    callback: (err, msg) => {
      if (err) {
        log.warn({ err }, "heartbeat subscription error");
        return;
      }
      const subjectNode = nodeIdFromSubject(msg.subject) ?? "unknown";
      let parsed: ReturnType<typeof Heartbeat.safeParse>;
      try {
        parsed = Heartbeat.safeParse(msg.json());
      } catch {
        malformed.note(subjectNode, "heartbeat", "not JSON");
        return;
      }
      if (!parsed.success || parsed.data.nodeId !== subjectNode) {
        malformed.note(subjectNode, "heartbeat", parsed.success ? "names another node" : (parsed.error.issues[0]?.message ?? "invalid"));
        return;
      }
      liveness.record(parsed.data);
      o.heard?.(parsed.data.nodeId);
      if (o.writes && !o.writes()) {
        states.delete(parsed.data.nodeId); // a new leader writes what it sees first, not what it saw as a follower
        return;
      }
      noteEpoch(parsed.data.nodeId, parsed.data.sessionEpoch);
    },
  });
  return {
    subscription,
    get writes() {
      return writes;
    },
    stop: () => {
      subscription.unsubscribe();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
