/**
 * SPIFFE on this host, wired: the trust bundle watch, the X.509-SVIDs of the identities this host
 * serves (its own when `hostUids` is not empty, and its workloads' as the controller recorded them,
 * followed as the agent state changes), JWT-SVIDs, and the Workload API socket.
 *
 * Needs the controller only to sign: a restarted agent has no SVIDs (their keys lived in the old
 * process's memory) until the controller answers; the Workload API serves as soon as they come.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { AbortedError, retry } from "@weft/util";
import { requestJwtSvid, requestX509Svid } from "../control/svid-client.js";
import type { StateHolder } from "../state/holder.js";
import type { AgentState } from "../state/store.js";
import type { Caller } from "./attest.js";
import { TrustBundleWatch } from "./bundle-watch.js";
import { JwtSvids } from "./jwt.js";
import { netnsAt, ownNetns } from "./peercred.js";
import { X509SvidSource } from "./svids.js";
import { WorkloadApi } from "./workload-api.js";

export interface SpiffeOptions {
  nc: NatsConnection;
  state: StateHolder;
  /** The configured workloads: their names and network namespaces (in /run/netns). */
  workloads: readonly { name: string; netns: string }[];
  /** Host processes with these uids get the node's identity. */
  hostUids: readonly number[];
  socketPath: string;
  log: Logger;
}

/** The node's own SPIFFE ID, from its peer record as last applied. */
export function nodeSpiffeId(state: AgentState): string | undefined {
  return state.applied?.peers.find((p) => p.nodeId === state.nodeId)?.identity?.spiffeId;
}

/** The SPIFFE IDs this host serves SVIDs for (pure). */
export function servedIds(state: AgentState, configured: readonly { name: string }[], hostUids: readonly number[]): string[] {
  const ids = new Set<string>();
  const own = nodeSpiffeId(state);
  if (own && hostUids.length > 0) ids.add(own);
  const names = new Set(configured.map((w) => w.name));
  for (const w of state.workloads ?? []) if (names.has(w.name)) ids.add(w.identity.spiffeId);
  return [...ids].sort();
}

export class SpiffeService {
  readonly svids: X509SvidSource;
  readonly bundle: TrustBundleWatch;
  readonly jwt: JwtSvids;
  readonly #api: WorkloadApi;
  readonly #stop = new AbortController();
  #offState: (() => void) | undefined;

  constructor(private readonly o: SpiffeOptions) {
    const nodeId = o.state.current.nodeId;
    this.svids = new X509SvidSource({ sign: (id, csr) => requestX509Svid(o.nc, nodeId, id, csr), log: o.log });
    this.bundle = new TrustBundleWatch(o.nc, o.log);
    this.jwt = new JwtSvids((id, audience) => requestJwtSvid(o.nc, nodeId, id, audience));
    const hostNetns = ownNetns();
    this.#api = new WorkloadApi({
      socketPath: o.socketPath,
      context: () => ({ hostNetns, hostUids: o.hostUids, workloads: o.workloads.map((w) => ({ name: w.name, netns: netnsAt(`/run/netns/${w.netns}`) })) }),
      identityOf: (caller) => this.identityOf(caller),
      svids: this.svids,
      bundle: this.bundle,
      jwt: this.jwt,
      log: o.log,
    });
  }

  /** The SPIFFE ID a caller holds now. */
  identityOf(caller: Caller): string | undefined {
    const state = this.o.state.current;
    if (caller.kind === "host") return this.o.hostUids.length > 0 ? nodeSpiffeId(state) : undefined;
    if (caller.kind === "workload") return state.workloads?.find((w) => w.name === caller.workload)?.identity.spiffeId;
    return undefined;
  }

  async start(): Promise<void> {
    const follow = () => this.svids.setWanted(servedIds(this.o.state.current, this.o.workloads, this.o.hostUids));
    this.#offState = this.o.state.onChange(follow);
    follow();
    void this.#watchBundle();
    void this.#followConnection();
    await this.#api.listen();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#offState?.();
    this.bundle.stop();
    this.svids.stop();
    await this.#api.close();
  }

  async #watchBundle(): Promise<void> {
    try {
      await retry(() => this.bundle.resync(), {
        initialMs: 500,
        maxMs: 10_000,
        signal: this.#stop.signal,
        retryIf: () => !this.o.nc.isClosed(),
        onRetry: (err, delay) => this.o.log.warn({ err, retryInMs: delay }, "cannot read the trust bundle yet"),
      });
    } catch (err) {
      if (!(err instanceof AbortedError) && !this.o.nc.isClosed()) this.o.log.warn({ err }, "cannot read the trust bundle");
    }
  }

  /** After a reconnect the bundle is read again (a change made meanwhile was not seen). */
  async #followConnection(): Promise<void> {
    for await (const s of this.o.nc.status()) {
      if (this.#stop.signal.aborted) return;
      if (s.type === "reconnect") void this.#watchBundle();
    }
  }
}
