/**
 * The host agent: enrolls once, brings up the WireGuard interface and the eBPF datapath, restores
 * the last applied policy, peers and workloads from its cache (fail static: the data plane is
 * right before anyone is reached), then follows the peers bucket and its own policy over NATS and
 * sends heartbeats. Stopping the agent leaves the interface, its peers and the pinned programs in
 * place, so traffic keeps flowing.
 *
 * This file only wires the parts, each the one owner of its state:
 *   state/holder.ts          state.json (every reconciler changes its fields through it)
 *   status/reporter.ts       status.json and the gauges' inputs
 *   reconcile/interface.ts   the overlay interface and the session epoch
 *   reconcile/site-routes.ts site routes taken and the gateway role
 *   reconcile/peers.ts       WireGuard peers, ipcache and tunnels, warm-up
 *   reconcile/policy.ts      the datapath's policy maps
 *   reconcile/workloads.ts   workloads and their request to the controller
 *   services/reconciler.ts   services: socket load balancing maps, health checks, DNS
 *   session/nats.ts          the connection, the watches and resync after reconnects
 *   session/heartbeats.ts    heartbeats
 *   nat/manager.ts           paths to peers behind NAT (relay, punched), RTT per peer
 *   nat/public-address.ts    this node's public address when the cloud moves it
 *   relay/server.ts          relayed pairs' datagrams, on a relay node
 *   session/credentials.ts   the NATS credential, renewed at half-life
 *   enroll/once.ts           the first enrollment
 *   localapi/                the local API socket; each part registers its own routes
 *   spiffe/                  the SPIFFE Workload API, this host's SVIDs and the trust bundle
 *   whois/                   address → node, workload, SPIFFE ID (GET /v1/whois)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { z } from "zod";
import { parseEndpoint, type NodePathsRecord } from "@weft/protocol";
import { AgentConfig, type AgentConfigInput } from "./config.js";
import { BPFFS_MOUNT_POINT, ensureBpffs } from "./datapath/bpffs.js";
import { AgentDatapath } from "./datapath/datapath.js";
import { identityNames } from "./datapath/names.js";
import { enrollOnce } from "./enroll/once.js";
import { FlowExporter, JsonLinesFlowSink, type FlowSink } from "./flows/index.js";
import { createCommandRunner, type CommandRunner } from "./exec/runner.js";
import { LOCAL_API_SOCKET, LocalApi, groupId } from "./localapi/index.js";
import { controllerAddresses } from "./net/controller-addresses.js";
import { Subjects, type FlowReport } from "@weft/protocol";
import { GatewayForwarding } from "./net/gateway.js";
import { applyMssClamp } from "./net/mss.js";
import { SiteRemapping } from "./net/remap.js";
import { defaultRouteMtu, overlayMtuFor } from "./net/underlay.js";
import { PathManager } from "./nat/manager.js";
import { PathProbe } from "./nat/probe.js";
import { PublicAddressWatcher } from "./nat/public-address.js";
import { RelayServer } from "./relay/server.js";
import { OverlayInterface } from "./reconcile/interface.js";
import { PeerReconciler } from "./reconcile/peers.js";
import { PolicyReconciler } from "./reconcile/policy.js";
import { SiteRouteReconciler } from "./reconcile/site-routes.js";
import { WorkloadReconciler } from "./reconcile/workloads.js";
import { LazyServiceDatapath, ServiceDatapath, cgroup2Root } from "./services/datapath.js";
import { DnsServer, resolvConfNameservers } from "./services/dns.js";
import { ServiceReconciler } from "./services/reconciler.js";
import { Heartbeats } from "./session/heartbeats.js";
import { CredentialRenewer } from "./session/credentials.js";
import { KeyRotation } from "./session/key-rotation.js";
import { NatsSession, connectNats, natsTransport, publishWireguardKey } from "./session/nats.js";
import type { SpiffeService } from "./spiffe/index.js";
import { StateHolder } from "./state/holder.js";
import { loadOrCreateNatsIdentity } from "./state/nkey.js";
import { whoisRoute } from "./whois/index.js";
import { WIREGUARD_KEY_FILE, ensureStateDir, type AgentState } from "./state/store.js";
import type { MetricsSource } from "./status/metrics.js";
import { serveMetrics, type ScrapeRegistry } from "./status/metrics-server.js";
import type { Registry } from "prom-client";
import type { AgentStatus } from "./status/file.js";
import { peerStats } from "./status/peers.js";
import { StatusReporter } from "./status/reporter.js";
import { StartupTimer } from "./status/startup.js";
import { statusView } from "./status/view.js";
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
  // zod compiles a parser per object schema on first use (new Function); the agent's V8 runs only
  // its interpreter (packaging/bin/weft), where compiling those costs more than they save: 10–18 →
  // 4–6 ms of CPU for the config and a peer set's first records, the same per record after.
  z.config({ jitless: true });
  const config = AgentConfig.parse(input);
  const startup = new StartupTimer(log);
  startup.mark("modules loaded");
  await ensureStateDir(config.stateDir);
  const [keyPair, natsIdentity] = await Promise.all([loadOrCreatePrivateKey(join(config.stateDir, WIREGUARD_KEY_FILE)), loadOrCreateNatsIdentity(config.stateDir)]);
  startup.mark("keys ready");
  const state = (await StateHolder.load(config.stateDir)) ?? (await StateHolder.create(config.stateDir, await enrollOnce(config, keyPair.publicKey, natsIdentity, log)));
  const { nodeId, site, overlayAddress, overlayCidr, workloadCidr } = state.current;
  const root = log.child({ node: nodeId });
  log = root.child({ component: "agent" });
  startup.use(log);
  startup.mark("enrolled or state loaded");
  const component = (name: string) => root.child({ component: name });

  const run = createCommandRunner();
  const wireguard = createWireGuard({ name: config.interface.name, implementation: config.interface.implementation, logger: component("wireguard") });
  const self = { nodeId, site, behindNat: config.endpoints.public === undefined, keepaliveSeconds: config.keepaliveSeconds };
  const overlayRanges = [overlayCidr, ...(workloadCidr ? [workloadCidr] : [])];
  const mtu = config.interface.mtu === "auto" ? overlayMtuFor(await defaultRouteMtu(run).catch(() => undefined)) : config.interface.mtu;
  const status = new StatusReporter(config.stateDir, { ...initialStatus(config, state.current), mtu }, log);
  const iface = new OverlayInterface({
    wireguard,
    state,
    settings: { mtu, listenPort: config.interface.listenPort, privateKeyPath: join(config.stateDir, WIREGUARD_KEY_FILE), addresses: [`${overlayAddress}/32`] },
    overlayRanges,
    log,
  });
  const gateway = new GatewayForwarding(run, component("gateway"));
  const controller = await controllerAddresses(state.current.controllerUrl, state.current.nats.servers);
  const remapping = new SiteRemapping(run, component("gateway"));
  const siteRoutes = new SiteRouteReconciler({ self, overlayRanges, iface, interfaceName: config.interface.name, gateway, remapping, snat: config.gateway.snat, controller, run, status, log });
  // NATS, the interface and the datapath's programs do not wait for one another (the watches start
  // only once the cache is restored, below).
  let userJwt = state.current.nats.userJwt;
  const connecting = natsTransport(state.current, config.stateDir).then((transport) => connectNats(state.current, natsIdentity, transport, () => userJwt, log));
  connecting.catch(() => undefined); // awaited below
  const [, datapath] = await Promise.all([
    // Fail static: the interface comes up with the cached peers' site routes routed.
    (async () => {
      await iface.bringUp((await siteRoutes.restore(state.current.applied?.peers ?? [])).routes);
      startup.mark("interface up");
      await applyMssClamp(run, config.interface.name, mtu).catch((err: unknown) => log.warn({ err }, "cannot clamp the MSS of forwarded TCP; large transfers through this node may stall on small-MTU paths"));
    })(),
    openDatapath(config, run, log, component("datapath")),
  ]);

  // Paths to peers behind NAT: the probe answers on the overlay address; the manager picks relay or punched paths.
  const probe = new PathProbe({ address: overlayAddress, overlayRanges, log: component("paths") });
  await probe.start().catch((err: unknown) => log.warn({ err }, "cannot open the path probe; no RTT and no punched paths on this node"));
  const relay = new RelayServer(component("relay"));
  // The manager asks the reconciler and the heartbeats (made below) for work only once it runs (paths.start()).
  const paths = new PathManager({ self, wireguard, probe, reapply: () => peers.reapply(), onChange: () => heartbeats.soon(), log: component("paths") });

  const peers = new PeerReconciler({ self, wireguard, siteRoutes, datapath, state, status, log, paths });
  const policy = new PolicyReconciler({ datapath, state, status, log });
  const workloads = new WorkloadReconciler({ configured: config.workloads, mtu, datapath, run, state, log: component("workloads") });
  const services = await openServices(config, state, status, run, log, component);
  // Fail static, in this order: the cached policy, ipcache, tunnels and services into the maps
  // before any program is attached (they refill the maps after a reboot); the workloads; the peers.
  policy.restore();
  await peers.restoreDatapath();
  await services?.reconciler.restore(); // loads and attaches the socket programs when the cache has services
  await datapath?.attachOverlay(config.interface.name);
  await workloads.restore();
  await peers.restore();
  // Migration: maps an older build pinned and this one replaced go once the new ones are filled and attached.
  const retired = datapath?.removeRetiredPins() ?? [];
  if (retired.length > 0) log.info({ maps: retired }, "removed the pins of maps this version replaced (their entries were rebuilt in the new maps)");
  startup.mark("datapath and cache restored");

  const nc = await connecting;
  startup.mark("NATS connected");
  const heartbeats = new Heartbeats({
    nc,
    wireguard,
    state,
    status,
    log,
    paths: (key) => paths.report(key),
    reportFirst: (key) => paths.reportFirst(key),
    observed: (actual) => void peers.observe(actual),
  });
  const onPaths = (record: NodePathsRecord | null) => {
    paths.setPlan(record);
    void relay.apply(record?.relaySessions ?? []).then(() => status.publish({ relay: relay.status() }));
  };
  const session = new NatsSession({ nc, nodeId, peers, policy, workloads, services: services?.reconciler, onPaths, status, root, log });
  session.start();
  paths.start();
  void peers.synced.then(() => startup.mark("first peer set applied", { peers: state.current.applied?.peers.length ?? 0 }));
  const credentials = new CredentialRenewer({ nc, state, log: component("credentials"), onRenewed: (jwt) => (userJwt = jwt) });
  credentials.start();
  const publishPaths = setInterval(() => {
    status.publish({ paths: paths.status(), ...(relay.status().sessions > 0 || status.current.relay ? { relay: relay.status() } : {}) });
  }, 2000);
  publishPaths.unref();
  const publicAddress =
    config.cloud && config.endpoints.public
      ? new PublicAddressWatcher({
          nc,
          nodeId,
          provider: config.cloud.provider,
          metadataEndpoint: config.cloud.metadataEndpoint,
          port: parseEndpoint(config.endpoints.public)?.port ?? config.interface.listenPort,
          current: () => state.current.applied?.peers.find((p) => p.nodeId === nodeId)?.endpoints.public,
          log: component("public-address"),
        })
      : undefined;
  publicAddress?.start();

  const flows = datapath ? await startFlowExporter(config, nodeId, state.current.name, datapath, () => identityNames(state.current.applied?.peers ?? []), (report) => {
    if (nc.isClosed() || status.current.nats !== "connected") return false;
    nc.publish(Subjects.flows(nodeId), JSON.stringify(report));
    return true;
  }, component("flows")) : undefined;

  const metrics =
    config.metrics.listen === ""
      ? undefined
      : await serveMetrics(
          config.metrics.listen,
          lazyRegistry(
            {
              flows: () => datapath?.flows() ?? [],
              names: () => identityNames(state.current.applied?.peers ?? []),
              peers: () => status.current.peers,
              natsConnected: () => status.current.nats === "connected",
              policyEntries: () => policy.applied.record?.entries.length ?? 0,
              peerStats: async () => peerStats((await wireguard.show())?.peers ?? [], state.current.applied?.peers ?? [], new Date()),
              flowExport: () => flows?.counts() ?? [],
              flowReports: () => flows?.reports ?? { sent: 0, unsent: 0 },
            },
            async (registry) => {
              if (services) (await import("./services/metrics.js")).registerServiceMetrics(registry, { backends: () => services.reconciler.metricRows(), refused: () => services.reconciler.refusedRows() });
            },
          ),
          component("metrics"),
        );

  heartbeats.start();

  // SPIFFE starts once the first peer set from NATS is applied (before that it could serve nothing:
  // SVIDs are signed over NATS, the node's SPIFFE ID comes with the peers) and its first handshakes
  // are done or no longer retried: loading it (gRPC, X.509) and making its first SVID key hold the
  // event loop for hundreds of milliseconds on a busy machine, and the re-adds' timers and the
  // handshakes would wait for it.
  let stopping = false;
  let spiffe: Promise<SpiffeService | undefined> | undefined;
  void peers.settled.then(() => {
    if (!stopping) spiffe = openSpiffe(config, nc, state, component("spiffe"));
  });

  const localApi = await openLocalApi(config, component("localapi"));
  localApi?.route("GET", "/v1/status", async () => status.current);
  localApi?.route("GET", "/v1/status/view", async () => statusView(state.current, status.current, (await wireguard.show())?.peers ?? []));
  const rotation = new KeyRotation({ iface, publish: (publicKey) => publishWireguardKey(nc, nodeId, publicKey), everyHours: config.interface.keyRotationHours, log: component("wgkey") });
  rotation.start();
  localApi?.route("POST", "/v1/rotate-key", async () => rotation.rotate());
  if (services) localApi?.route("GET", "/v1/services", async () => services.reconciler.view());
  localApi?.route("GET", "/v1/whois", async (req) => whoisRoute(state.current, req.query));
  startup.mark("running");

  return {
    get state() {
      return state.current;
    },
    wireguard,
    datapath,
    synced: peers.synced,
    stop: async () => {
      stopping = true;
      session.stop();
      credentials.stop();
      rotation.stop();
      heartbeats.stop();
      paths.stop();
      publicAddress?.stop();
      clearInterval(publishPaths);
      probe.stop();
      relay.close();
      peers.stop();
      workloads.stop();
      await flows?.stop();
      await peers.idle();
      await policy.idle();
      await services?.reconciler.idle();
      await services?.dns?.close();
      services?.datapath?.close();
      await localApi?.close();
      await (await spiffe)?.stop();
      await new Promise<void>((r) => (metrics ? metrics.close(() => r()) : r()));
      datapath?.close();
      await session.close();
      status.publish({ nats: "stopped", stale: true });
      await Promise.all([status.idle(), state.idle()]);
      log.info("agent stopped; the interface, its peers and the pinned eBPF programs stay in place");
    },
  };
}

/** The metrics registry, made (prom-client loaded) on the first scrape. */
function lazyRegistry(source: MetricsSource, extend: (registry: Registry) => Promise<void>): () => Promise<ScrapeRegistry> {
  let registry: Promise<ScrapeRegistry> | undefined;
  return () =>
    (registry ??= import("./status/metrics.js").then(async (m) => {
      const r = m.agentRegistry(source);
      await extend(r);
      return r;
    }));
}

/** The flow exporter (reports to the controller, and the OTLP and JSON lines sinks configured). */
async function startFlowExporter(
  config: AgentConfig,
  nodeId: string,
  name: string | undefined,
  datapath: AgentDatapath,
  names: () => ReturnType<typeof identityNames>,
  report: (r: FlowReport) => boolean,
  log: Logger,
): Promise<FlowExporter> {
  const node = { nodeId, name };
  const sinks: FlowSink[] = [];
  if (config.flows.otlp) sinks.push(new (await import("./flows/otlp-sink.js")).OtlpFlowSink({ endpoint: config.flows.otlp.endpoint, headers: config.flows.otlp.headers, timeoutMs: config.flows.otlp.timeoutSeconds * 1000, node }));
  if (config.flows.file) sinks.push(new JsonLinesFlowSink({ path: config.flows.file, node }));
  const exporter = new FlowExporter({
    nodeId,
    read: () => datapath.flows(),
    names,
    intervalMs: config.flows.intervalSeconds * 1000,
    sinks,
    queueSize: config.flows.queueSize,
    ...(config.flows.report ? { report } : {}),
    log,
  });
  exporter.start();
  log.info({ intervalSeconds: config.flows.intervalSeconds, sinks: sinks.map((s) => s.name), report: config.flows.report }, "flow export started");
  return exporter;
}

/** The eBPF datapath on its pins (mounting the bpffs when nothing is mounted), or undefined when it is turned off. */
async function openDatapath(config: AgentConfig, run: CommandRunner, log: Logger, datapathLog: Logger): Promise<AgentDatapath | undefined> {
  if (!config.datapath.enabled) {
    log.warn("datapath.enabled is false: no eBPF policy, flow counters or same-site encapsulation on this node");
    return undefined;
  }
  // The pinned maps still hold what the last agent applied; the cache refills them when the pins are gone (a reboot).
  if (await ensureBpffs(config.datapath.pinDir, run)) log.info({ mountPoint: BPFFS_MOUNT_POINT }, "mounted the bpf filesystem (nothing was mounted there)");
  return AgentDatapath.open({ pinDir: config.datapath.pinDir, flowTableEntries: config.datapath.flowTableEntries, vxlanInterface: config.datapath.vxlanInterface, vxlanPort: config.datapath.vxlanPort, run, log: datapathLog });
}

interface Services {
  reconciler: ServiceReconciler;
  datapath: LazyServiceDatapath | undefined;
  dns: DnsServer | undefined;
}

/**
 * Services: the socket programs on the datapath's pins (loaded when the node first has a service,
 * from the cache or NATS, and attached once their maps are filled), the DNS server for the host and
 * its workloads, and the reconciler that keeps both in line.
 * Undefined when services are turned off. A part that cannot start (no cgroup v2, port 53 taken) is
 * logged and left out; the rest runs.
 */
async function openServices(config: AgentConfig, state: StateHolder, status: StatusReporter, run: CommandRunner, log: Logger, component: (name: string) => Logger): Promise<Services | undefined> {
  if (!config.services.enabled) return undefined;
  const svcLog = component("services");
  const datapath = config.datapath.enabled
    ? new LazyServiceDatapath({ open: () => ServiceDatapath.open(config.datapath.pinDir, config.datapath.flowTableEntries, svcLog), attach: (dp) => attachServicePrograms(config, dp, svcLog), log: svcLog })
    : undefined;
  const { overlayAddress } = state.current;
  const dnsListen = config.services.dns.listen === "overlay" ? `${overlayAddress}:53` : config.services.dns.listen;
  let dns: DnsServer | undefined;
  if (dnsListen !== "") {
    const i = dnsListen.lastIndexOf(":");
    const host = dnsListen.slice(0, i);
    const upstream = config.services.dns.upstream ?? resolvConfNameservers(readText("/etc/resolv.conf"), new Set([host]));
    dns = new DnsServer({
      host,
      port: Number(dnsListen.slice(i + 1)),
      upstream,
      clients: () => new Set(["127.0.0.1", overlayAddress, ...(state.current.workloads ?? []).map((w) => w.address)]),
      log: component("dns"),
    });
    try {
      await dns.start();
      log.info({ listen: dnsListen, upstream }, "answering DNS for service, node and workload names");
    } catch (err) {
      log.error({ err, listen: dnsListen }, "cannot serve DNS; continuing without it");
      dns = undefined;
    }
  }
  const reconciler = new ServiceReconciler({
    nodeId: state.current.nodeId,
    datapath,
    dns,
    nameserver: dns && config.services.dns.workloadResolvConf ? dnsListen.slice(0, dnsListen.lastIndexOf(":")) : undefined,
    workloads: config.workloads.map((w) => ({ name: w.name, namespace: w.namespace, netns: w.netns })),
    observer: { consecutiveFailures: config.services.passive.consecutiveFailures, ejectMs: config.services.passive.ejectSeconds * 1000, tauMs: 2000 },
    defaultZone: "weft.internal", // until the first record or the node's own identity says otherwise
    run,
    state,
    status,
    log: svcLog,
  });
  return { reconciler, datapath, dns };
}

/** Attaches the socket programs to the configured cgroup (after their maps were filled); a failure is logged. */
function attachServicePrograms(config: AgentConfig, datapath: ServiceDatapath, log: Logger): void {
  const cgroup = config.services.cgroup === "auto" ? cgroup2Root() : config.services.cgroup;
  if (!cgroup) {
    log.error("no cgroup v2 hierarchy is mounted: sockets are not balanced at connect time (workload veths still are, by the tc fallback)");
    return;
  }
  try {
    datapath.attach(cgroup);
    log.info({ cgroup }, "service socket programs attached: connections to service VIPs are balanced at connect time");
  } catch (err) {
    log.error({ err, cgroup }, "cannot attach the service socket programs; workload veths are still balanced by the tc fallback");
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** The SPIFFE stack (gRPC, protobufjs, X.509): imported once the first peer set is applied (openSpiffe). */
const importSpiffe = () => import("./spiffe/index.js");

/**
 * Imports what the agent imports only once it runs (the SPIFFE stack), without starting anything:
 * for a code cache made before any agent runs (packaging/agent.cjs), which then holds those modules
 * compiled too.
 */
export async function importDeferredModules(): Promise<void> {
  await importSpiffe();
}

/** SPIFFE (the Workload API, SVIDs, the bundle), or undefined when turned off or it cannot listen. */
async function openSpiffe(config: AgentConfig, nc: NatsConnection, state: StateHolder, log: Logger): Promise<SpiffeService | undefined> {
  if (config.spiffe.socket === "") return undefined;
  const { SpiffeService } = await importSpiffe();
  const spiffe = new SpiffeService({ nc, state, workloads: config.workloads, hostUids: config.spiffe.hostUids, socketPath: config.spiffe.socket, log });
  try {
    await spiffe.start();
    return spiffe;
  } catch (err) {
    log.error({ err, socket: config.spiffe.socket }, "cannot serve the SPIFFE Workload API; continuing without it");
    await spiffe.stop().catch(() => undefined);
    return undefined;
  }
}

/** The local API on its socket (root and the configured group), or undefined when turned off or it cannot listen. */
async function openLocalApi(config: AgentConfig, log: Logger): Promise<LocalApi | undefined> {
  const path = config.localApi.socket ?? join(config.stateDir, LOCAL_API_SOCKET);
  if (path === "") return undefined;
  const api = new LocalApi({ path, gid: await groupId(config.localApi.group), log });
  try {
    await api.listen();
    return api;
  } catch (err) {
    log.error({ err, socket: path }, "cannot serve the local API; continuing without it");
    return undefined;
  }
}

function initialStatus(config: AgentConfig, state: AgentState): Omit<AgentStatus, "updatedAt"> {
  return {
    nodeId: state.nodeId,
    interface: config.interface.name,
    ...(config.datapath.enabled ? { pinDir: config.datapath.pinDir } : {}),
    policyRevision: state.appliedPolicy?.revision ?? -1,
    policyEntries: state.appliedPolicy?.record?.entries.length ?? 0,
    nats: "connecting",
    stale: true,
    appliedRevision: state.applied?.revision ?? 0,
    peers: state.applied?.peers.length ?? 0,
  };
}
