/**
 * The agent's NATS session: connects with this node's own credentials (unlimited reconnects,
 * waits growing with full jitter: reconnect-delays.ts), starts the peers watch and this node's policy and path-plan watches (each retried
 * with backoff, 500 ms doubling up to 10 s, until it runs), follows the connection (disconnected:
 * the status says stale, the data plane keeps the last applied config; reconnected: the watches
 * and the workloads request start over (the peers watch reading only what changed meanwhile when
 * it can, PeerWatch.resume), and the services key is read again, changes made
 * meanwhile were not seen), and reports a connection NATS closed for good (credentials revoked:
 * the node was deleted). Peer sets, policies and path plans go to their owners.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { KeyRotationReply, Subjects, type KeyRotationRequest, type NodePathsRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { AbortedError, retry, sleep } from "@weft/util";
import { PeerWatch } from "../control/peer-watch.js";
import { agentAuthenticator } from "./authenticator.js";
import { ReconnectDelays } from "./reconnect-delays.js";
import { NodePathsWatch } from "../control/paths-watch.js";
import { NodePolicyWatch } from "../control/policy-watch.js";
import { CONTROLLER_CA_FILE } from "../enroll/client.js";
import { AgentError } from "../errors.js";
import type { PeerReconciler } from "../reconcile/peers.js";
import type { PolicyReconciler } from "../reconcile/policy.js";
import type { ServiceReconciler } from "../services/reconciler.js";
import type { WorkloadReconciler } from "../reconcile/workloads.js";
import type { NatsIdentity } from "../state/nkey.js";
import type { AgentState } from "../state/store.js";
import type { StatusReporter } from "../status/reporter.js";

/**
 * The NATS servers and the CA to trust for them: every URL must be `tls://` (a plaintext `nats://`
 * is refused: peer records and policies would cross the network readable), and the CA is the one
 * the controller handed out at enrollment, else the controller CA pinned then. Throws AgentError.
 */
export async function natsTransport(state: AgentState, stateDir: string): Promise<{ servers: string[]; caPem: string }> {
  const plain = state.nats.servers.filter((u) => !u.startsWith("tls://"));
  if (plain.length > 0) {
    throw new AgentError(`refusing plaintext NATS URL ${plain.join(", ")}: want tls:// (upgrade the controller, then delete this node and enroll again)`, { retryable: false });
  }
  const caPem = state.nats.caPem ?? (await readFile(join(stateDir, CONTROLLER_CA_FILE), "utf8").catch(() => undefined));
  if (caPem === undefined || caPem.trim() === "") {
    throw new AgentError(`no CA to trust for NATS: the enrollment gave none and ${join(stateDir, CONTROLLER_CA_FILE)} is missing; enroll over https with --ca-hash`, { retryable: false });
  }
  return { servers: state.nats.servers, caPem };
}

/**
 * nats.js's TLS options for trusting only `caPem`, with the TLS context made from it once. nats.js
 * hands its TLS options on to Node's `tls.connect`, which would otherwise build a new context (parse
 * the CA, load the default ciphers) for every attempt: about 0.5 ms of CPU each, a fifth of a TLS
 * connect, paid by every agent on every reconnect, and a thousand times over by a process holding a
 * thousand simulated agents after a NATS restart (test/bench/scale.ts). `ca` stays for nats.js
 * itself; `tls.connect` uses the context given and ignores it.
 */
export function natsTls(caPem: string): NodeConnectionOptions["tls"] & { secureContext: SecureContext } {
  return { ca: caPem, secureContext: createSecureContext({ ca: caPem }) };
}

/**
 * Connects as this node over TLS trusting only the NATS CA; resolves once connected (waits for the
 * first connect as long as it takes). `userJwt` is read on every (re)connect, so a renewed
 * credential is used from the next connection on.
 */
export async function connectNats(state: AgentState, identity: NatsIdentity, transport: { servers: string[]; caPem: string }, userJwt: () => string, log: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: transport.servers,
    tls: natsTls(transport.caPem),
    authenticator: agentAuthenticator(userJwt, identity.seed),
    inboxPrefix: Subjects.inboxPrefix(state.nodeId),
    name: `weft-agent-${state.name}`,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectDelayHandler: new ReconnectDelays().next,
    pingInterval: 10_000,
    // No stack trace captured per request (two Error objects each, made whether or not it fails):
    // after a reconnect every agent reads its keys again, at once.
    noAsyncTraces: true,
  }).catch((err: unknown) => {
    throw new AgentError(`cannot connect to NATS at ${state.nats.servers.join(", ")}`, { cause: err, retryable: true });
  });
  log.info({ servers: state.nats.servers }, "connected to NATS");
  return nc;
}

/**
 * Sends this node's new WireGuard public key to the controller and resolves once the node and peer
 * records carry it (peers then switch); throws AgentError with the controller's refusal.
 */
export async function publishWireguardKey(nc: NatsConnection, nodeId: string, publicKey: string): Promise<void> {
  let reply: KeyRotationReply;
  try {
    const msg = await nc.request(Subjects.wireguardKey(nodeId), JSON.stringify({ version: 1, wireguardPublicKey: publicKey } satisfies KeyRotationRequest), { timeout: 10_000 });
    reply = KeyRotationReply.parse(msg.json());
  } catch (err) {
    throw new AgentError("cannot reach the controller to rotate the WireGuard key; the old key stays", { cause: err, retryable: true });
  }
  if (!reply.ok) throw new AgentError(`the controller refused the new WireGuard key: ${reply.error.code}: ${reply.error.message}`, { retryable: reply.error.code === "store_unavailable" });
}

export interface NatsSessionOptions {
  nc: NatsConnection;
  nodeId: string;
  peers: Pick<PeerReconciler, "submit">;
  policy: Pick<PolicyReconciler, "submit">;
  workloads: Pick<WorkloadReconciler, "start" | "resync">;
  /** This node's path plan (relays, punching rounds, relay sessions), or null when it has none. */
  onPaths: (record: NodePathsRecord | null) => void;
  /** This node's services (its own key of weft-node-services, health and statistics reports). */
  services?: ServiceReconciler | undefined;
  status: Pick<StatusReporter, "publish">;
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
    this.#peerWatch = new PeerWatch(o.nc, Subjects.inboxPrefix(o.nodeId), (set) => o.peers.submit(set), o.root.child({ component: "peer-watch" }), () => this.#startPeerWatch(WATCH_ENDED_PAUSE_MS));
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
    this.o.services?.start(nc);
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
    this.o.services?.stop();
  }

  async close(): Promise<void> {
    await this.o.nc.close().catch(() => undefined);
  }

  /** Starts the peers watch; after a reconnect (`resume`) it reads only what changed when it can. */
  #startPeerWatch(pauseMs = 0, resume = false): void {
    void this.#keepTrying("cannot watch peers yet", () => (resume ? this.#peerWatch.resume() : this.#peerWatch.restart()), pauseMs);
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
        this.#startPeerWatch(0, true);
        this.#startPolicyWatch();
        this.#startPathsWatch();
        this.o.workloads.resync(nc);
        void this.o.services?.resync();
      }
    }
  }
}
