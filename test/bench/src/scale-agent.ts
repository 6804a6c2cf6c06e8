/**
 * One simulated agent of the scale benchmark: the agent's own control plane, no data plane.
 *
 * It enrolls through the controller's enrollment API with a join key (the agent's `enroll`, CA
 * pinned by hash, its own NATS nkey and WireGuard key made here), connects to NATS with the
 * credential it was issued (the agent's `connectNats`: TLS, its own user JWT, unlimited
 * reconnects with jitter) and heartbeats (the agent's `Heartbeats`, WireGuard answering no peers).
 *
 * A **full** agent then runs the agent's `NatsSession`: the peers watch (PeerWatch: live
 * subscription, paged snapshot, the merged view), this node's policy watch and path-plan watch,
 * all restarted after a reconnect, exactly as `weft agent` does. Each full agent holds every
 * peer record (about 0.8 kB parsed), so one machine cannot hold thousands of them at 10,000
 * peers each; the others are **light**: the same connection, credential, heartbeats, policy and
 * path-plan watches (the agent's classes), and the live peers subscription PeerWatch makes (the
 * same messages from the server), but no snapshot and no view: they note the key and operation
 * of each update and read a record only when a probe asks for its name.
 *
 * Every delivery is checked against the armed probe (scale-protocol.ts); the first time it holds
 * is reported to `onHit`.
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { createUser } from "@nats-io/nkeys";
import { Heartbeats, NatsSession, NodePolicyWatch, connectNats, enroll, natsTransport, type AgentState, type AgentStatus, type NatsIdentity, type PeerSet } from "@weft/agent/control-plane";
import { Subjects, generateKeyPair, type NodePolicyRecord } from "@weft/protocol";
import { isRetryable, retry } from "@weft/util";
import type { Logger } from "pino";
import { now, type Probe } from "./scale-protocol.js";

const UPDATES_PREFIX = Subjects.allPeerUpdates.slice(0, -1);

export interface SimAgentOptions {
  index: number;
  full: boolean;
  apiUrl: string;
  caHash: string;
  joinKey: string;
  log: Logger;
  /** Called once per armed probe, the first time it holds. */
  onHit: (agent: SimAgent, at: number) => void;
}

export class SimAgent {
  state: AgentState | undefined;
  /** When the connect started and when the first peer set and the first policy read were both in. */
  startedAt = Number.NaN;
  syncedAt = Number.NaN;
  #identity: NatsIdentity | undefined;
  #nc: NatsConnection | undefined;
  #session: NatsSession | undefined;
  #heartbeats: Heartbeats | undefined;
  #policyWatch: NodePolicyWatch | undefined;
  #peerSub: Subscription | undefined;
  #status: AgentStatus | undefined;
  #peers: PeerSet["peers"] | undefined;
  #policy: NodePolicyRecord | null | undefined;
  #probe: Probe | undefined;
  #hit = false;
  #reconnectedAt = Number.NaN;
  #onSynced: (() => void) | undefined;

  /** The connection's state as the agent's status has it (connected, disconnected, closed), or "none". */
  get natsState(): string {
    return this.#status?.nats ?? "none";
  }

  /** When NATS last said reconnected while a reconnect probe was armed (NaN: not since). */
  get reconnectedAt(): number {
    return this.#reconnectedAt;
  }

  constructor(private readonly o: SimAgentOptions) {}

  get name(): string {
    return `sim-${this.o.index}`;
  }

  /** Enrolls with the join key; resolves with the time it took (ms). Throws the agent's enrollment errors. */
  async enroll(): Promise<number> {
    const t0 = now();
    const kp = createUser();
    this.#identity = { publicKey: kp.getPublicKey(), seed: kp.getSeed() };
    const req = { version: 1 as const, joinKey: this.o.joinKey, name: this.name, site: "sim", wireguardPublicKey: generateKeyPair().publicKey, natsPublicKey: this.#identity.publicKey, listenPort: 51820, endpoints: { public: simEndpoint(this.o.index) } };
    // As the agent does (enroll/once.ts): an unreachable or failing controller is retried, 1 s doubling up to 30 s.
    const { response, caPem } = await retry(() => enroll(this.o.apiUrl, req, { caHash: this.o.caHash, timeoutMs: 60_000 }), {
      initialMs: 1000,
      maxMs: 30_000,
      retryIf: isRetryable,
      // Said on stderr: a retried enrollment the controller had completed comes back as a conflict.
      onRetry: (err, delay) => process.stderr.write(`    ${this.name}: enrollment retried in ${delay} ms after ${String(err)}${err instanceof Error && err.cause ? ` (${String(err.cause)})` : ""}\n`),
    });
    const at = new Date().toISOString();
    this.state = {
      version: 1,
      nodeId: response.nodeId,
      name: this.name,
      site: response.site ?? "sim",
      overlayAddress: response.overlayAddress,
      overlayCidr: response.overlayCidr,
      controllerUrl: this.o.apiUrl,
      nats: { servers: response.nats.servers, userJwt: response.nats.userJwt, ...((response.nats.caPem ?? caPem) ? { caPem: response.nats.caPem ?? caPem } : {}) },
      heartbeatSeconds: response.heartbeatSeconds,
      enrolledAt: at,
    };
    return now() - t0;
  }

  /** Connects and starts the watchers and heartbeats; resolves when the first peer set and policy read are in. */
  async connect(): Promise<void> {
    const state = this.state;
    const identity = this.#identity;
    if (!state || !identity) throw new Error(`${this.name}: connect before enroll`);
    this.startedAt = now();
    const synced = new Promise<void>((resolve) => (this.#onSynced = resolve));
    const transport = await natsTransport(state, "/nonexistent");
    const nc = await connectNats(state, identity, transport, () => state.nats.userJwt, this.o.log);
    this.#nc = nc;
    this.#status = { nodeId: state.nodeId, interface: "none", nats: "connected", stale: false, appliedRevision: 0, peers: 0, policyRevision: -1, policyEntries: 0, updatedAt: new Date().toISOString() };
    const status = { publish: (change: Partial<AgentStatus>) => this.#onStatus(change) };
    const policy = { submit: (record: NodePolicyRecord | null) => this.#onPolicy(record) };
    if (this.o.full) {
      const workloads = { start: () => undefined, resync: () => undefined }; // none configured: a real agent asks nothing either
      this.#session = new NatsSession({ nc, nodeId: state.nodeId, peers: { submit: (set) => this.#onPeers(set) }, policy, workloads, onPaths: () => undefined, status, root: this.o.log, log: this.o.log });
      this.#session.start();
    } else {
      await this.#startLight(nc, state.nodeId, policy.submit);
    }
    this.#heartbeats = new Heartbeats({ nc, wireguard: { peers: () => Promise.resolve([]) }, state: { current: state }, status: { current: this.#status }, log: this.o.log });
    this.#heartbeats.start();
    await synced;
  }

  /** Bytes and messages this agent's connection received so far. */
  stats(): { inBytes: number; inMsgs: number } {
    const s = this.#nc?.stats();
    return { inBytes: s?.inBytes ?? 0, inMsgs: s?.inMsgs ?? 0 };
  }

  /** Arms a probe (replacing the last one); reports at once when it already holds. */
  arm(probe: Probe): void {
    this.#probe = probe;
    this.#hit = false;
    this.#reconnectedAt = Number.NaN;
    if (probe.kind === "peerNamed" && this.#peers) this.#check(() => [...this.#peers!.values()].some((r) => r.name === probe.name));
    if (probe.kind === "peerGone" && this.#peers) this.#check(() => !this.#peers!.has(probe.nodeId));
    if (probe.kind === "policyPort") this.#check(() => hasPort(this.#policy, probe.port));
  }

  async stop(): Promise<void> {
    this.#heartbeats?.stop();
    this.#session?.stop();
    this.#policyWatch?.stop();
    this.#peerSub?.unsubscribe();
    await this.#nc?.close().catch(() => undefined);
  }

  /** Light: the policy watch (retried until it runs, resynced after reconnects) and the live peers subscription. */
  async #startLight(nc: NatsConnection, nodeId: string, submit: (record: NodePolicyRecord | null) => void): Promise<void> {
    const watch = new NodePolicyWatch(nc, nodeId, (record) => submit(record), this.o.log);
    this.#policyWatch = watch;
    this.#peerSub = nc.subscribe(Subjects.allPeerUpdates, {
      callback: (err, msg) => {
        if (!err) this.#onPeerMessage(msg);
      },
    });
    await nc.flush();
    this.#onPeers(undefined);
    const keepTrying = async (run: () => Promise<void>) => {
      for (let delay = 500; !nc.isClosed(); delay = Math.min(delay * 2, 10_000)) {
        try {
          return await run();
        } catch {
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    };
    void keepTrying(() => watch.start());
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") this.#onStatus({ nats: "disconnected" });
        else if (s.type === "reconnect") {
          this.#onStatus({ nats: "connected" });
          await keepTrying(() => watch.resync());
          if (this.#probe?.kind === "resynced" && !Number.isNaN(this.#reconnectedAt)) this.#check(() => true);
        }
      }
    })();
  }

  #onPeerMessage(msg: Msg): void {
    const probe = this.#probe;
    if (!probe || this.#hit || !msg.subject.startsWith(UPDATES_PREFIX)) return;
    const key = msg.subject.slice(UPDATES_PREFIX.length);
    const op = msg.headers?.get("KV-Operation");
    const deleted = op === "DEL" || op === "PURGE";
    if (probe.kind === "peerGone") this.#check(() => deleted && key === probe.nodeId);
    if (probe.kind === "peerNamed") this.#check(() => !deleted && (msg.json() as { name?: unknown }).name === probe.name);
  }

  #onPeers(set: PeerSet | undefined): void {
    if (set) {
      this.#peers = set.peers;
      if (this.#status) this.#status.appliedRevision = set.revision;
    }
    const probe = this.#probe;
    if (probe?.kind === "peerNamed" && set) this.#check(() => [...set.peers.values()].some((r) => r.name === probe.name));
    if (probe?.kind === "peerGone" && set) this.#check(() => !set.peers.has(probe.nodeId));
    if (probe?.kind === "resynced" && set && !Number.isNaN(this.#reconnectedAt)) this.#check(() => true);
    this.#syncedMaybe();
  }

  #onPolicy(record: NodePolicyRecord | null): void {
    this.#policy = record;
    const probe = this.#probe;
    if (probe?.kind === "policyPort") this.#check(() => hasPort(record, probe.port));
    this.#syncedMaybe();
  }

  #onStatus(change: Partial<AgentStatus>): void {
    if (this.#status) Object.assign(this.#status, change);
    if (change.nats === "connected" && this.#probe && (this.#probe.kind === "reconnected" || this.#probe.kind === "resynced")) {
      if (Number.isNaN(this.#reconnectedAt)) this.#reconnectedAt = now();
      if (this.#probe.kind === "reconnected") this.#check(() => true);
    }
  }

  #syncedMaybe(): void {
    if (!Number.isNaN(this.syncedAt) || this.#policy === undefined || (this.o.full && this.#peers === undefined)) return;
    this.syncedAt = now();
    this.#onSynced?.();
  }

  #check(holds: () => boolean): void {
    if (this.#hit || !holds()) return;
    this.#hit = true;
    this.o.onHit(this, now());
  }
}

function hasPort(record: NodePolicyRecord | null | undefined, port: number): boolean {
  return record?.entries.some((e) => e[3] <= port && port <= e[4]) ?? false;
}

/** A public endpoint nobody answers on (TEST-NET-2), distinct per agent. */
function simEndpoint(index: number): string {
  return `198.51.100.${1 + (index % 250)}:${20000 + Math.floor(index / 250)}`;
}
