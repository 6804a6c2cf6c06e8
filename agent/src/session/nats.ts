/**
 * The agent's NATS session: connects with this node's own credentials (unlimited reconnects with
 * jitter), starts the peers watch and this node's policy and path-plan watches (each retried
 * with backoff, 500 ms doubling up to 10 s, until it runs), follows the connection (disconnected:
 * the status says stale, the data plane keeps the last applied config; reconnected: the watches
 * and the workloads request start over, changes made meanwhile were not seen), and reports a
 * connection NATS closed for good (credentials revoked: the node was deleted). Peer sets,
 * policies and path plans go to their owners.
 */
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Subjects, type NodePathsRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { AbortedError, retry, sleep } from "@weft/util";
import { PeerWatch } from "../control/peer-watch.js";
import { NodePathsWatch } from "../control/paths-watch.js";
import { NodePolicyWatch } from "../control/policy-watch.js";
import { AgentError } from "../errors.js";
import type { PeerReconciler } from "../reconcile/peers.js";
import type { PolicyReconciler } from "../reconcile/policy.js";
import type { WorkloadReconciler } from "../reconcile/workloads.js";
import type { NatsIdentity } from "../state/nkey.js";
import type { AgentState } from "../state/store.js";
import type { StatusReporter } from "../status/reporter.js";

/** Connects as this node; resolves once connected (waits for the first connect as long as it takes). */
export async function connectNats(state: AgentState, identity: NatsIdentity, log: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: state.nats.servers,
    authenticator: jwtAuthenticator(state.nats.userJwt, identity.seed),
    inboxPrefix: Subjects.inboxPrefix(state.nodeId),
    name: `weft-agent-${state.name}`,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 1000,
    pingInterval: 10_000,
  }).catch((err: unknown) => {
    throw new AgentError(`cannot connect to NATS at ${state.nats.servers.join(", ")}`, { cause: err, retryable: true });
  });
  log.info({ servers: state.nats.servers }, "connected to NATS");
  return nc;
}

export interface NatsSessionOptions {
  nc: NatsConnection;
  nodeId: string;
  peers: PeerReconciler;
  policy: PolicyReconciler;
  workloads: WorkloadReconciler;
  /** This node's path plan (relays, punching rounds, relay sessions), or null when it has none. */
  onPaths: (record: NodePathsRecord | null) => void;
  status: StatusReporter;
  /** The agent's root logger (each watch gets its own component). */
  root: Logger;
  log: Logger;
}

/** Backoff of a watch that cannot start yet. */
const WATCH_RETRY = { initialMs: 500, maxMs: 10_000 } as const;
/** Pause before restarting a peers watch the server ended. */
const WATCH_ENDED_PAUSE_MS = 1000;

export class NatsSession {
  readonly #peerWatch: PeerWatch;
  readonly #policyWatch: NodePolicyWatch;
  readonly #pathsWatch: NodePathsWatch;
  readonly #stop = new AbortController();

  constructor(private readonly o: NatsSessionOptions) {
    this.#peerWatch = new PeerWatch(o.nc, (set) => o.peers.submit(set), o.root.child({ component: "peer-watch" }), () => this.#startPeerWatch(WATCH_ENDED_PAUSE_MS));
    this.#policyWatch = new NodePolicyWatch(o.nc, o.nodeId, (record, revision) => o.policy.submit(record, revision), o.root.child({ component: "policy-watch" }));
    this.#pathsWatch = new NodePathsWatch(o.nc, o.nodeId, (record) => o.onPaths(record), o.root.child({ component: "paths-watch" }));
  }

  /** Starts both watches and the workloads request, then follows the connection until it closes. */
  start(): void {
    const { nc, status, log } = this.o;
    status.publish({ nats: "connected" });
    this.#startPeerWatch();
    this.#startPolicyWatch();
    this.#startPathsWatch();
    this.o.workloads.start(nc);
    void this.#follow();
    void nc.closed().then((err) => {
      if (this.#stop.signal.aborted) return;
      log.error({ err }, "NATS closed the connection for good (credentials revoked or refused: was this node deleted?); keeping the last applied config");
      status.publish({ nats: "closed", stale: true });
    });
  }

  /** Stops the watches and their retries; the connection is closed by `close`. */
  stop(): void {
    this.#stop.abort();
    this.#peerWatch.stop();
    this.#policyWatch.stop();
    this.#pathsWatch.stop();
  }

  async close(): Promise<void> {
    await this.o.nc.close().catch(() => undefined);
  }

  #startPeerWatch(pauseMs = 0): void {
    void this.#keepTrying("cannot watch peers yet", () => this.#peerWatch.restart(), pauseMs);
  }

  #startPolicyWatch(): void {
    void this.#keepTrying("cannot read this node's policy yet", () => this.#policyWatch.resync());
  }

  #startPathsWatch(): void {
    void this.#keepTrying("cannot read this node's path plan yet", () => this.#pathsWatch.resync());
  }

  /** Runs `attempt` until it succeeds, the session stops or NATS closes for good. */
  async #keepTrying(what: string, attempt: () => Promise<void>, pauseMs = 0): Promise<void> {
    const { nc, log } = this.o;
    const signal = this.#stop.signal;
    try {
      if (pauseMs > 0) await sleep(pauseMs, signal);
      await retry(
        async () => {
          if (!nc.isClosed()) await attempt();
        },
        { ...WATCH_RETRY, signal, retryIf: () => !nc.isClosed(), onRetry: (err, delay) => log.warn({ err, retryInMs: delay }, what) },
      );
    } catch (err) {
      if (!(err instanceof AbortedError) && !nc.isClosed()) log.warn({ err }, what);
    }
  }

  async #follow(): Promise<void> {
    const { nc, status, log } = this.o;
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        log.warn("NATS disconnected; keeping the last applied config");
        status.publish({ nats: "disconnected", stale: true });
      } else if (s.type === "reconnect") {
        log.info("NATS reconnected; resyncing peers");
        status.publish({ nats: "connected" });
        this.#startPeerWatch();
        this.#startPolicyWatch();
        this.#startPathsWatch();
        this.o.workloads.resync(nc);
      }
    }
  }
}
