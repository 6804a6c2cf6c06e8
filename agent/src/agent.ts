/**
 * The host agent: enrolls once, brings up the WireGuard interface, restores
 * the last applied peers from its cache (fail static), then follows the peers
 * bucket over NATS and sends heartbeats. Stopping the agent leaves the
 * interface and its peers in place, so traffic keeps flowing.
 */
import { join } from "node:path";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Subjects, parseEndpoint, type Heartbeat, type EnrollRequest, type NodePolicyRecord, type PeerRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { AgentConfig, type AgentConfigInput } from "./config.js";
import { LatestWins } from "@weft/util";
import { PeerWatch, type PeerSet } from "./control/peer-watch.js";
import { NodePolicyWatch } from "./control/policy-watch.js";
import { BPFFS_MOUNT_POINT, ensureBpffs } from "./datapath/bpffs.js";
import { AgentDatapath } from "./datapath/datapath.js";
import { identityNames } from "./datapath/names.js";
import { agentRegistry, serveMetrics } from "./metrics.js";
import { createCommandRunner } from "./wireguard/exec.js";
import { WorkloadManager } from "./workloads/manager.js";
import { CONTROLLER_CA_FILE, enroll } from "./enroll/client.js";
import { readInstanceIdentity } from "./enroll/instance.js";
import { readJoinKeyFile } from "./enroll/join-key-file.js";
import { AgentError } from "./errors.js";
import { defaultRouteAddress } from "./net/underlay.js";
import { desiredPeers } from "./peers/desired.js";
import { siteRoutesToTake, type SiteRouteDecision } from "./peers/site-routes.js";
import { GatewayForwarding } from "./net/gateway.js";
import { localRoutes } from "./net/underlay.js";
import { newSessionEpoch, renewedSessions } from "./peers/epochs.js";
import { warmUp } from "./peers/warmup.js";
import { loadOrCreateNatsIdentity, type NatsIdentity } from "./state/nkey.js";
import { WIREGUARD_KEY_FILE, ensureStateDir, loadState, saveState, writeFileAtomic, type AgentState } from "./state/store.js";
import { writeStatus, type AgentStatus } from "./state/status.js";
import { createWireGuard, loadOrCreatePrivateKey, type WireGuard } from "./wireguard/index.js";

export interface RunningAgent {
  state: AgentState;
  wireguard: WireGuard;
  /** The eBPF datapath; undefined when datapath.enabled is false. */
  datapath: AgentDatapath | undefined;
  /** Resolves once the first peer set from NATS has been applied. */
  synced: Promise<void>;
  stop(): Promise<void>;
}

export async function startAgent(input: AgentConfigInput, log: Logger): Promise<RunningAgent> {
  const config = AgentConfig.parse(input);
  await ensureStateDir(config.stateDir);
  const keyPair = await loadOrCreatePrivateKey(join(config.stateDir, WIREGUARD_KEY_FILE));
  const nats = await loadOrCreateNatsIdentity(config.stateDir);
  let state = (await loadState(config.stateDir)) ?? (await enrollOnce(config, keyPair.publicKey, nats, log));
  const root = log.child({ node: state.nodeId });
  log = root.child({ component: "agent" });

  const run = createCommandRunner();
  const wireguard = createWireGuard({ name: config.interface.name, implementation: config.interface.implementation, logger: root.child({ component: "wireguard" }) });
  const self = { nodeId: state.nodeId, site: state.site, behindNat: config.endpoints.public === undefined, keepaliveSeconds: config.keepaliveSeconds };
  const overlayRanges = [state.overlayCidr, ...(state.workloadCidr ? [state.workloadCidr] : [])];
  const interfaceOptions = {
    mtu: config.interface.mtu,
    listenPort: config.interface.listenPort,
    privateKeyPath: join(config.stateDir, WIREGUARD_KEY_FILE),
    addresses: [`${state.overlayAddress}/32`],
    routes: overlayRanges,
  };
  // Site routes other sites' gateways advertise: decided on every peer set, against this host's own routes.
  const takeSiteRoutes = async (records: PeerRecord[]): Promise<SiteRouteDecision> => {
    const local = await localRoutes(run, [config.interface.name]).catch((err: unknown) => {
      log.warn({ err }, "cannot read this host's routes; routing no site routes into the overlay until it can");
      return undefined;
    });
    if (local === undefined) return { byNode: new Map(), routes: [], refused: [] };
    // The endpoints tunnels are sent to (desiredPeers picks them): a route over one would loop.
    const names = new Map(records.map((r) => [r.wireguardPublicKey, r.name]));
    const endpoints = desiredPeers(self, records).flatMap((p) => {
      const address = p.endpoint === undefined ? undefined : parseEndpoint(p.endpoint)?.host;
      return address === undefined ? [] : [{ address, peer: names.get(p.publicKey) ?? p.publicKey }];
    });
    return siteRoutesToTake({ self: { nodeId: state.nodeId, site: state.site }, peers: records, overlay: overlayRanges, local, endpoints });
  };
  // Fail static: the cached peers' site routes stay routed while the interface is converged.
  let siteRoutes = await takeSiteRoutes(state.applied?.peers ?? []);
  const ensured = await wireguard.ensure({ ...interfaceOptions, routes: [...overlayRanges, ...siteRoutes.routes] });
  if (ensured.created || !state.sessionEpoch) {
    // A fresh interface has no sessions: a new epoch tells NAT'd peers to handshake again.
    state = { ...state, sessionEpoch: newSessionEpoch() };
    await saveState(config.stateDir, state);
  }

  // Fail static: the pinned maps still hold what the last agent applied; the cache refills them
  // when the pins are gone (a reboot) before any program is attached.
  if (config.datapath.enabled && (await ensureBpffs(config.datapath.pinDir, run))) log.info({ mountPoint: BPFFS_MOUNT_POINT }, "mounted the bpf filesystem (nothing was mounted there)");
  const datapath = config.datapath.enabled
    ? AgentDatapath.open({ pinDir: config.datapath.pinDir, vxlanInterface: config.datapath.vxlanInterface, vxlanPort: config.datapath.vxlanPort, run, log: root.child({ component: "datapath" }) })
    : undefined;
  if (!datapath) log.warn("datapath.enabled is false: no eBPF policy, flow counters or same-site encapsulation on this node");
  let policy = state.appliedPolicy ?? { revision: -1, record: null as NodePolicyRecord | null };
  if (datapath && state.appliedPolicy) datapath.applyPolicy(state.appliedPolicy.record);
  if (datapath && state.applied) await datapath.applyPeers(state.nodeId, state.applied.peers);
  await datapath?.attachOverlay(config.interface.name);

  const workloads = new WorkloadManager({
    nodeId: state.nodeId,
    configured: config.workloads,
    overlayAddress: () => state.overlayAddress,
    mtu: config.interface.mtu,
    datapath,
    run,
    log: root.child({ component: "workloads" }),
    save: async (result) => {
      state = { ...state, workloadPrefix: result.workloadPrefix, workloads: result.workloads };
      await saveState(config.stateDir, state);
    },
  });
  await workloads.restore(state.workloads).catch((err: unknown) => log.error({ err }, "cannot restore cached workloads"));

  const status: AgentStatus = { nodeId: state.nodeId, interface: config.interface.name, ...(datapath ? { pinDir: config.datapath.pinDir } : {}), policyRevision: policy.revision, policyEntries: policy.record?.entries.length ?? 0, nats: "connecting", stale: true, appliedRevision: state.applied?.revision ?? 0, peers: state.applied?.peers.length ?? 0, updatedAt: new Date().toISOString() };
  const publishStatus = (patch: Partial<AgentStatus>) => {
    Object.assign(status, patch, { updatedAt: new Date().toISOString() });
    void writeStatus(config.stateDir, status).catch((err: unknown) => log.warn({ err }, "cannot write status file"));
  };

  const gateway = new GatewayForwarding(run, root.child({ component: "gateway" }));
  const applySiteRoutes = async (records: PeerRecord[], taken: SiteRouteDecision) => {
    if (taken.routes.join() !== siteRoutes.routes.join()) {
      await wireguard.ensure({ ...interfaceOptions, routes: [...overlayRanges, ...taken.routes] });
      log.info({ routes: taken.routes }, "site routes applied");
    }
    const refused = JSON.stringify(taken.refused);
    if (taken.refused.length > 0 && refused !== JSON.stringify(siteRoutes.refused)) log.warn({ refused: taken.refused }, "refusing advertised site routes");
    siteRoutes = taken;
    const own = records.find((r) => r.nodeId === state.nodeId)?.siteRoutes ?? [];
    await gateway.apply({ routes: own, sources: overlayRanges, overlayInterface: config.interface.name, snat: config.gateway.snat });
    const names = new Map(records.map((r) => [r.nodeId, r.name]));
    publishStatus({
      siteRoutes: [...taken.byNode].flatMap(([nodeId, cidrs]) => cidrs.map((cidr) => ({ cidr, gateway: names.get(nodeId) ?? nodeId }))),
      refusedSiteRoutes: taken.refused,
      gatewayFor: own,
    });
  };

  const applyPeers = async (set: PeerSet, source: "cache" | "nats") => {
    const records = [...set.peers.values()];
    const taken = await takeSiteRoutes(records);
    const desired = desiredPeers(self, records, taken.byNode);
    if (self.behindNat) {
      // Peers that lost their sessions cannot reach us: drop the stale session so the re-add handshakes now.
      const renewed = renewedSessions(state.applied?.peers, records);
      if (renewed.size > 0) {
        log.info({ peers: [...renewed] }, "peers recreated their interfaces; re-handshaking");
        await wireguard.syncPeers(desired.filter((p) => !renewed.has(p.publicKey)));
      }
    }
    const { changes, ...counts } = await wireguard.syncPeers(desired);
    if (changes.length > 0) log.info({ revision: set.revision, source, ...counts }, "peers applied");
    await applySiteRoutes(records, taken);
    if (datapath) {
      const synced = await datapath.applyPeers(state.nodeId, records);
      if (synced.ipcache.set + synced.ipcache.deleted + synced.tunnels.set + synced.tunnels.deleted > 0) log.info({ revision: set.revision, source, ...synced }, "ipcache and tunnels applied");
    }
    const touched = new Set(changes.flatMap((c) => (c.kind === "add" ? [c.peer.publicKey] : c.kind === "update" && c.endpoint ? [c.publicKey] : [])));
    await warmUp(records.filter((r) => touched.has(r.wireguardPublicKey)).map((r) => r.overlayAddress));
    if (source === "nats") {
      const removed = !set.peers.has(state.nodeId);
      if (removed && !status.removed) log.error("this node is no longer in the overlay (deleted on the controller?); enroll again with a new join key after removing the state directory");
      status.removed = removed;
      state = { ...state, applied: { revision: set.revision, peers: records, appliedAt: new Date().toISOString() } };
      await saveState(config.stateDir, state);
      publishStatus({ appliedRevision: set.revision, peers: records.length, stale: false, lastSyncAt: new Date().toISOString() });
    }
  };

  // Fail static: put the last applied peers back before talking to anyone.
  if (state.applied) await applyPeers({ peers: new Map(state.applied.peers.map((p: PeerRecord) => [p.nodeId, p])), revision: state.applied.revision }, "cache");

  let markSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));
  const policyApplier = new LatestWins<{ record: NodePolicyRecord | null; revision: number }>(
    async (next) => {
      if (next.revision <= policy.revision) return;
      if (datapath) {
        const r = datapath.applyPolicy(next.record);
        log.info({ revision: next.revision, entries: next.record?.entries.length ?? 0, policies: next.record?.policies ?? [], ...r }, "policy applied");
      }
      policy = next;
      state = { ...state, appliedPolicy: next };
      await saveState(config.stateDir, state);
      publishStatus({ policyRevision: next.revision, policyEntries: next.record?.entries.length ?? 0 });
    },
    (err) => log.error({ err }, "applying the node policy failed; keeping the last applied entries, will retry on the next change"),
  );

  const applier = new LatestWins<PeerSet>(
    async (set) => {
      await applyPeers(set, "nats");
      markSynced();
    },
    (err) => log.error({ err }, "applying peers failed; will retry on the next change or resync"),
  );

  const nc = await connect({
    servers: state.nats.servers,
    authenticator: jwtAuthenticator(state.nats.userJwt, nats.seed),
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
  publishStatus({ nats: "connected" });
  log.info({ servers: state.nats.servers }, "connected to NATS");

  const watch = new PeerWatch(nc, (set) => applier.submit(set), root.child({ component: "peer-watch" }));
  const startWatch = async (): Promise<void> => {
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        await watch.restart();
        return;
      } catch (err) {
        log.warn({ err, retryInMs: delay }, "cannot watch peers yet");
        await sleep(delay + Math.random() * delay);
        if (nc.isClosed()) return;
      }
    }
  };
  void startWatch();
  const policyWatch = new NodePolicyWatch(nc, state.nodeId, (record, revision) => policyApplier.submit({ record, revision }), root.child({ component: "policy-watch" }));
  const startPolicyWatch = async (): Promise<void> => {
    for (let delay = 500; !nc.isClosed(); delay = Math.min(delay * 2, 10_000)) {
      try {
        await policyWatch.resync();
        return;
      } catch (err) {
        log.warn({ err, retryInMs: delay }, "cannot read this node's policy yet");
        await sleep(delay + Math.random() * delay);
      }
    }
  };
  void startPolicyWatch();
  let workloadsTimer: NodeJS.Timeout | undefined;
  let workloadsRetryMs = 1000;
  const syncWorkloads = async (): Promise<void> => {
    clearTimeout(workloadsTimer);
    try {
      await workloads.sync(nc, state.workloads);
      workloadsRetryMs = 1000;
    } catch (err) {
      log.error({ err, retryInMs: workloadsRetryMs }, "cannot sync workloads with the controller; retrying");
      if (!nc.isClosed()) workloadsTimer = setTimeout(() => void syncWorkloads(), workloadsRetryMs);
      workloadsRetryMs = Math.min(workloadsRetryMs * 2, 30_000);
    }
  };
  if (config.workloads.length > 0 || (state.workloads?.length ?? 0) > 0) void syncWorkloads();
  void followConnection(nc, log, {
    onDisconnect: () => publishStatus({ nats: "disconnected", stale: true }),
    onReconnect: () => {
      publishStatus({ nats: "connected" });
      void startWatch();
      void startPolicyWatch();
      if (config.workloads.length > 0) void syncWorkloads();
    },
  });

  let stopping = false;
  void nc.closed().then((err) => {
    if (stopping) return;
    log.error({ err }, "NATS closed the connection for good (credentials revoked or refused: was this node deleted?); keeping the last applied config");
    publishStatus({ nats: "closed", stale: true });
  });

  const metrics =
    config.metrics.listen === ""
      ? undefined
      : await serveMetrics(
          config.metrics.listen,
          agentRegistry({
            flows: () => datapath?.flows() ?? [],
            names: () => identityNames(state.applied?.peers ?? []),
            peers: () => status.peers,
            natsConnected: () => status.nats === "connected",
            policyEntries: () => policy.record?.entries.length ?? 0,
          }),
          root.child({ component: "metrics" }),
        );

  const heartbeat = setInterval(() => void sendHeartbeat(nc, wireguard, state, status.appliedRevision, log), state.heartbeatSeconds * 1000);
  void sendHeartbeat(nc, wireguard, state, status.appliedRevision, log);

  return {
    get state() {
      return state;
    },
    wireguard,
    datapath,
    synced,
    stop: async () => {
      stopping = true;
      clearInterval(heartbeat);
      clearTimeout(workloadsTimer);
      watch.stop();
      policyWatch.stop();
      await applier.idle();
      await policyApplier.idle();
      await new Promise<void>((r) => (metrics ? metrics.close(() => r()) : r()));
      datapath?.close();
      await nc.close().catch(() => undefined);
      publishStatus({ nats: "stopped", stale: true });
      log.info("agent stopped; the interface, its peers and the pinned eBPF programs stay in place");
    },
  };
}

async function enrollOnce(config: AgentConfig, wireguardPublicKey: string, nats: NatsIdentity, log: Logger): Promise<AgentState> {
  const joinKey = config.joinKey ?? (config.joinKeyFile === undefined ? undefined : await readJoinKeyFile(config.joinKeyFile));
  if (!config.controllerUrl || (!joinKey && !config.cloud)) {
    throw new AgentError("this node is not enrolled yet: pass --controller <url> and --join-key <key> (or WEFT_JOIN_KEY), or --cloud <provider> to join by instance identity");
  }
  const privateAddress = config.endpoints.private ?? (await defaultEndpoint(config.interface.listenPort));
  const req: EnrollRequest = {
    version: 1,
    ...(joinKey ? { joinKey } : {}),
    name: config.name,
    site: config.site,
    wireguardPublicKey,
    natsPublicKey: nats.publicKey,
    listenPort: config.interface.listenPort,
    endpoints: {
      ...(privateAddress === undefined ? {} : { private: privateAddress }),
      ...(config.endpoints.public === undefined ? {} : { public: config.endpoints.public }),
    },
  };
  if (new URL(config.controllerUrl).protocol === "http:") log.warn({ controller: config.controllerUrl }, "enrolling over plain HTTP: the join key crosses the network in clear text");
  for (let delay = 1000; ; delay = Math.min(delay * 2, 30_000)) {
    try {
      // Read on every attempt: early in boot the metadata service may not answer yet.
      if (config.cloud) req.instance = await readInstanceIdentity(config.cloud);
      const { response: res, caPem } = await enroll(config.controllerUrl, req, { caHash: config.controllerCaHash });
      // The CA the controller proved itself with; state.json (written last) marks the enrollment done.
      if (caPem !== undefined) await writeFileAtomic(join(config.stateDir, CONTROLLER_CA_FILE), caPem);
      const state: AgentState = {
        version: 1,
        nodeId: res.nodeId,
        name: config.name,
        site: config.site,
        overlayAddress: res.overlayAddress,
        overlayCidr: res.overlayCidr,
        controllerUrl: config.controllerUrl,
        nats: res.nats,
        heartbeatSeconds: res.heartbeatSeconds,
        ...(res.workloadPrefix ? { workloadPrefix: res.workloadPrefix } : {}),
        ...(res.workloadCidr ? { workloadCidr: res.workloadCidr } : {}),
        enrolledAt: new Date().toISOString(),
      };
      await saveState(config.stateDir, state);
      log.info({ node: res.nodeId, overlay: res.overlayAddress }, "enrolled");
      return state;
    } catch (err) {
      if (!(err instanceof AgentError) || !err.retryable) throw err;
      log.warn({ err: err.message, retryInMs: delay }, "enrollment failed; retrying");
      await sleep(delay + Math.random() * delay);
    }
  }
}

async function defaultEndpoint(port: number): Promise<string | undefined> {
  const address = await defaultRouteAddress().catch(() => undefined);
  return address === undefined ? undefined : `${address}:${port}`;
}

async function sendHeartbeat(nc: NatsConnection, wireguard: WireGuard, state: AgentState, appliedRevision: number, log: Logger): Promise<void> {
  if (nc.isClosed()) return;
  try {
    const shown = await wireguard.show();
    const hb: Heartbeat = {
      version: 1,
      nodeId: state.nodeId,
      sentAt: new Date().toISOString(),
      ...(state.sessionEpoch ? { sessionEpoch: state.sessionEpoch } : {}),
      appliedRevision,
      peers: (shown?.peers ?? []).map((p) => ({
        publicKey: p.publicKey,
        ...(p.latestHandshake ? { lastHandshake: Math.floor(p.latestHandshake.getTime() / 1000) } : {}),
        ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      })),
    };
    nc.publish(Subjects.heartbeat(state.nodeId), JSON.stringify(hb));
  } catch (err) {
    log.warn({ err }, "heartbeat failed");
  }
}

async function followConnection(nc: NatsConnection, log: Logger, on: { onDisconnect: () => void; onReconnect: () => void }): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === "disconnect") {
      log.warn("NATS disconnected; keeping the last applied config");
      on.onDisconnect();
    } else if (s.type === "reconnect") {
      log.info("NATS reconnected; resyncing peers");
      on.onReconnect();
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
