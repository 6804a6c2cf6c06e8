/**
 * The controller process: NATS (embedded or external), the KV-backed services,
 * the heartbeat listener and the REST API, started and stopped as one unit.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import { ControllerFiles } from "@weft/protocol";
import type { Logger } from "pino";
import { METRICS_TOKEN_FILE, loadOrCreateAdminToken, loadOrCreateToken } from "./admin-token.js";
import { buildApiServer, replaceCertificate } from "./api/server.js";
import { apiRoutes, type RouteContext } from "./api/routes.js";
import { openInstanceAttestor } from "./attest/index.js";
import { ControllerConfig, type ControllerConfigInput } from "./config.js";
import { ConsoleEvents } from "./console/events.js";
import { consoleRoutes } from "./console/routes.js";
import { ConsoleSessions } from "./console/sessions.js";
import { consoleBuilt, defaultConsoleDir, serveConsole } from "./console/static.js";
import { Enrollment } from "./enroll/enroll.js";
import { ControllerError } from "./errors.js";
import { FlowCollector } from "./flows/collector.js";
import { downloadRoutes } from "./install/downloads.js";
import { EnrollmentPolicies } from "./enroll/enrollment-policies.js";
import { IdentityAllocator } from "./identity/allocator.js";
import { IdentityReaper } from "./identity/reaper.js";
import { validateIdentityLabels } from "./identity/labels.js";
import { AddressAllocator } from "./ipam/allocator.js";
import { Claims } from "./ipam/claims.js";
import { PrefixAllocator } from "./ipam/prefixes.js";
import { SiteRouteAdvertiser, withdrawSiteRoutes } from "./inventory/advertise.js";
import { InventoryPlanner } from "./inventory/plan.js";
import { siteOfInstance } from "./inventory/sites.js";
import { InventorySync } from "./inventory/sync.js";
import { JoinKeys } from "./keys/joinkeys.js";
import { ControllerCounters } from "./metrics/counters.js";
import { ControllerMetrics } from "./metrics/metrics.js";
import { PathCoordinator } from "./nat/coordinator.js";
import { listenForEndpointUpdates } from "./nat/endpoints.js";
import { NodeCache } from "./nat/node-cache.js";
import { listenForHeartbeats } from "./nodes/heartbeats.js";
import { Liveness } from "./nodes/liveness.js";
import { NodeRegistry } from "./nodes/registry.js";
import { NatsAccess, connectController, ensureBuckets, loadOrCreateAuthority, superviseEmbeddedNats, type Authority, type SupervisedNats } from "./nats/index.js";
import { PolicyService } from "./policy/policies.js";
import { NodePolicyPublisher } from "./policy/publisher.js";
import { SPIFFE_DIR, SvidService, TrustDomainAuthority, publishTrustBundle } from "./spiffe/index.js";
import { openStores } from "./store/stores.js";
import { ApiTls, TLS_DIR, apiUrls, hostIpv4Addresses, requiredSans } from "./tls/index.js";
import { parseIpv4 } from "@weft/protocol";
import { parseOrThrow } from "./validation.js";
import { WorkloadService } from "./workloads/service.js";

export const CONTROLLER_VERSION = "0.1.0";
/** How often a running controller checks whether the API certificate needs reissuing. */
const CERT_CHECK_INTERVAL_MS = 12 * 3600_000;
/** Site routes are re-published this often even when nothing signalled a change. */
const SITE_ROUTE_RESYNC_MS = 60_000;

export interface RunningController {
  config: ControllerConfig;
  /** URL of the TCP API, e.g. https://0.0.0.0:8080 (http:// when api.tls.enabled is false). */
  apiUrl: string;
  /** Pin of the controller's CA for `--ca-hash` (sha256:…); undefined when the API is plain HTTP. */
  caHash: string | undefined;
  /** The controller's CA certificate (PEM); undefined when the API is plain HTTP. */
  caPem: string | undefined;
  apiSocket: string | undefined;
  natsUrl: string;
  adminToken: string;
  /** Reads GET /metrics only (Prometheus). */
  metricsToken: string;
  authority: Authority;
  nc: NatsConnection;
  /** The cloud inventory sync (idle when inventory.accounts is empty). */
  inventory: InventorySync;
  /** The process's counters (refusals, undelivered policies, released identities). */
  counters: ControllerCounters;
  /** Sweeps identity numbers nothing references (tests call sweep()). */
  identityReaper: IdentityReaper;
  stop(): Promise<void>;
}

export async function startController(input: ControllerConfigInput, log: Logger): Promise<RunningController> {
  const config = parseOrThrow(ControllerConfig, input, "controller config");
  const authority = await loadOrCreateAuthority(join(config.stateDir, "authority"));
  const adminToken = config.adminToken ?? (await loadOrCreateAdminToken(config.stateDir));
  const metricsToken = config.metrics.token ?? (await loadOrCreateToken(config.stateDir, METRICS_TOKEN_FILE));
  // Nodes by status are counted at scrape time, through the registry once it exists.
  let nodeStatuses: () => Promise<readonly { status: string }[]> = async () => [];
  const counters = new ControllerCounters();
  const metrics = new ControllerMetrics({ nodeStatuses: () => nodeStatuses(), counters });
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log.warn({ err }, "shutdown step failed"));
  };
  try {
    let embedded: SupervisedNats | undefined;
    if (!config.nats.url) {
      embedded = await superviseEmbeddedNats({
        monitorPort: 0,
        stateDir: config.stateDir,
        host: config.nats.listenHost,
        port: config.nats.port,
        authority,
        logger: log.child({ component: "nats" }),
      });
      cleanups.push(() => embedded!.stop());
    }
    const natsUrl = config.nats.url ?? embedded!.url;
    const nc = await connectController({ servers: [natsUrl], authority, name: "weft-controller", logger: log.child({ component: "nats-client" }) });
    cleanups.push(() => nc.drain());
    const access = await NatsAccess.connect({ servers: [natsUrl], authority, logger: log.child({ component: "nats-access" }) });
    cleanups.push(() => access.close());
    await ensureBuckets(nc);

    const stores = await openStores(nc, (bucket, op, result) => metrics.recordKv(bucket, op, result));

    // Nodes: the registry alone writes node and peer records; at start it brings them in line.
    const claims = new Claims(stores.ipam);
    const allocator = new AddressAllocator(claims, config.overlay.cidr);
    const prefixes = new PrefixAllocator(claims, config.overlay.workloadCidr, config.overlay.workloadPrefixLength);
    const liveness = new Liveness(config.offlineAfterSeconds * 1000);
    const registry = new NodeRegistry({
      nodes: stores.nodes,
      peers: stores.peers,
      claims,
      allocator,
      prefixes,
      liveness,
      log: log.child({ component: "registry" }),
      revokeCredential: (natsPublicKey) => access.revokeAgent(natsPublicKey),
      plaintextSites: config.overlay.plaintextSites,
    });
    await registry.reconcile();
    nodeStatuses = () => registry.list();
    const trustDomain = config.identity.trustDomain;
    const validateLabels = (labels: Record<string, string>) => validateIdentityLabels(labels, trustDomain);
    const joinKeys = new JoinKeys(stores.keys, undefined, validateLabels);
    const identities = new IdentityAllocator(stores.identities);
    const allocateIdentity = (spiffeId: string) => identities.allocate(spiffeId);

    // Policies, and each node's compiled view of them.
    // The publisher starts after the service it reports delivery to: a late-bound holder.
    const published: { publisher?: NodePolicyPublisher } = {};
    const policies = new PolicyService({
      store: stores.policies,
      identities: () => identities.list(),
      nodes: () => registry.list(),
      resolveNode: (idOrName) => registry.resolve(idOrName),
      workloadsOf: async (nodeId) => (await registry.get(nodeId)).workloads ?? [],
      delivery: (nodeId) => published.publisher?.delivery(nodeId),
      log: log.child({ component: "policy" }),
    });
    const publisher = await NodePolicyPublisher.start({
      stores: { policies: stores.policies, identities: stores.identities, nodes: stores.nodes, nodePolicies: stores.nodePolicies, nodePolicyChunks: stores.nodePolicyChunks },
      counters,
      log: log.child({ component: "policy-publisher" }),
      observe: { published: (node, bytes, entries, seconds) => metrics.recordPolicyPublished(node, bytes, entries, seconds), removed: (node) => metrics.recordPolicyRemoved(node) },
    });
    published.publisher = publisher;
    cleanups.push(() => publisher.stop());
    const releaseAfterMs = config.identity.releaseAfterSeconds * 1000;
    const workloads = new WorkloadService({
      registry,
      allocateIdentity,
      trustDomain,
      maxIdentitiesPerNode: config.identity.maxWorkloadIdentitiesPerNode,
      releaseAfterMs,
      counters,
      log: log.child({ component: "workloads" }),
    });
    const workloadsSub = workloads.serve(nc);
    cleanups.push(async () => workloadsSub.unsubscribe());
    // Identity numbers nothing references are released after the grace (identity/reaper.ts).
    const identityReaper = new IdentityReaper({
      identities,
      nodes: async () => (await stores.nodes.list()).map((n) => n.value),
      graceMs: releaseAfterMs,
      intervalMs: Math.min(60_000, Math.max(1000, releaseAfterMs / 4)),
      counters,
      log: log.child({ component: "identities" }),
    });
    identityReaper.start();
    cleanups.push(() => identityReaper.stop());

    // SPIFFE: the trust domain's CA and JWT key, the bundle every agent reads, SVIDs signed from CSRs.
    const spiffeLog = log.child({ component: "spiffe" });
    const trustAuthority = await TrustDomainAuthority.open({ dir: join(config.stateDir, SPIFFE_DIR), trustDomain, log: spiffeLog });
    await publishTrustBundle(stores.trustBundle, trustAuthority, spiffeLog);
    const svids = new SvidService({ authority: trustAuthority, registry, x509TtlSeconds: config.spiffe.x509SvidTtlSeconds, jwtTtlSeconds: config.spiffe.jwtSvidTtlSeconds, log: spiffeLog });
    const svidSubs = svids.serve(nc);
    cleanups.push(async () => svidSubs.forEach((s) => s.unsubscribe()));

    // Enrollment, with join by instance identity: the inventory the join checks read and bind, and the keyless-join policies.
    const advertisedNats = config.nats.advertise;
    const natsPort = embedded ? String(embedded.port) : new URL(natsUrl).port || "4222";
    const enrollmentPolicies = new EnrollmentPolicies({ store: stores.enrollPolicies, validateLabels, log: log.child({ component: "enrollment-policies" }) });
    const attestor = await openInstanceAttestor(stores, config.inventory.instanceIdentity);
    const enrollment = new Enrollment({
      inventory: stores.inventory,
      attestor,
      policies: enrollmentPolicies,
      siteOfInstance: (instance) => siteOfInstance(config.inventory.sites, instance),
      joinKeys,
      claims,
      allocator,
      prefixes,
      registry,
      issueAgentJwt: (nodeId, natsPublicKey) => authority.issueAgentUser({ nodeId, userPublicKey: natsPublicKey }),
      natsServersFor: (apiHost) => (advertisedNats.length > 0 ? advertisedNats : [`nats://${apiHost ?? "127.0.0.1"}:${natsPort}`]),
      allocateIdentity,
      trustDomain,
      heartbeatSeconds: config.heartbeatSeconds,
      log: log.child({ component: "enroll" }),
    });

    // Cloud inventory: its view and gateway plan; the site route advertiser publishing the plan
    // (one weft:gateway node per site advertises the site's networks to the others); the periodic
    // sync (labels and identity from tags, auto-revoke of gone instances), which hands each new plan
    // to the advertiser.
    const planner = new InventoryPlanner({
      store: stores.inventory,
      nodes: () => registry.list(),
      reserved: [
        { cidr: config.overlay.cidr, what: "overlay.cidr" },
        { cidr: config.overlay.workloadCidr, what: "overlay.workloadCidr" },
      ],
      remapPool: config.inventory.remapPool,
      controllerAddresses: controllerAddresses(config, embedded !== undefined),
      sites: config.inventory.sites,
    });
    const routesLog = log.child({ component: "site-routes" });
    const advertiser = config.inventory.advertiseSiteRoutes
      ? new SiteRouteAdvertiser({
          plan: () => planner.plan(),
          registry,
          liveness,
          nodesKv: stores.nodes.kv,
          startDelayMs: Math.ceil(config.heartbeatSeconds * 1.5 * 1000),
          checkMs: config.heartbeatSeconds * 1000,
          resyncMs: SITE_ROUTE_RESYNC_MS,
          log: routesLog,
        })
      : undefined;
    if (advertiser) {
      await advertiser.start();
      cleanups.push(() => advertiser.stop());
    } else {
      await withdrawSiteRoutes(registry, routesLog);
    }
    const inventory = new InventorySync({
      store: stores.inventory,
      planner,
      config: config.inventory,
      registry,
      allocateIdentity,
      trustDomain,
      onSynced: async (plan) => advertiser?.refresh(plan.gateways),
      onAccountSynced: (status, seconds) => metrics.recordInventorySync(status, seconds),
      log: log.child({ component: "inventory" }),
    });
    cleanups.push(() => inventory.stop());

    const heartbeats = listenForHeartbeats(nc, liveness, registry, log.child({ component: "liveness" }));
    cleanups.push(async () => heartbeats.unsubscribe());

    // Connectivity across NATs: moved public endpoints, reflexive endpoints, relays and hole punching.
    const endpointUpdates = listenForEndpointUpdates(nc, { registry, log: log.child({ component: "endpoints" }) });
    cleanups.push(async () => endpointUpdates.unsubscribe());
    const nodeCache = new NodeCache(stores.nodes.kv, log.child({ component: "node-cache" }));
    await nodeCache.start();
    cleanups.push(async () => nodeCache.stop());
    const paths = new PathCoordinator({
      nodes: nodeCache,
      store: stores.nodePaths,
      registry,
      liveness,
      config: {
        relayPorts: config.nat.relayPorts,
        backoff: { initialMs: config.nat.punchBackoffSeconds.initial * 1000, maxMs: config.nat.punchBackoffSeconds.max * 1000 },
      },
      log: log.child({ component: "paths" }),
    });
    await paths.start();
    cleanups.push(() => paths.stop());

    // The console: sessions, the live stream from the buckets' watches, flows from the agents' reports.
    const consoleLog = log.child({ component: "console" });
    const sessions = new ConsoleSessions({ ttlMs: config.console.sessionTtlSeconds * 1000, idleMs: config.console.sessionIdleSeconds * 1000, onCount: (n) => metrics.setConsoleSessions(n) });
    const events = new ConsoleEvents({ log: consoleLog });
    cleanups.push(() => events.stop());
    events.follow("nodes", stores.nodes.kv);
    events.follow("policies", stores.policies.kv);
    events.follow("identities", stores.identities.kv);
    events.follow("inventory", stores.inventory.kv);
    events.followHeartbeats(nc);
    const flows = new FlowCollector({ log: log.child({ component: "flows" }), onReport: (r) => metrics.recordFlowReport(r), onChange: () => events.publish("flows") });
    const flowsSub = flows.serve(nc);
    cleanups.push(async () => flowsSub.unsubscribe());
    const consoleDir = config.console.dir ?? defaultConsoleDir();
    const withConsole = config.console.enabled && consoleBuilt(consoleDir);
    if (config.console.enabled && !withConsole) consoleLog.warn({ dir: consoleDir }, "the console is not built there (npm run build -w console); serving the API without it");

    const apiLog = log.child({ component: "api" });
    const tls = config.api.tls.enabled
      ? await ApiTls.open({
          dir: join(config.stateDir, TLS_DIR),
          sans: requiredSans({ listenHost: config.api.listenHost, configured: config.api.tls.sans, hostAddresses: hostIpv4Addresses() }),
          log: log.child({ component: "tls" }),
        })
      : undefined;
    if (!tls) apiLog.warn("api.tls.enabled is false: the API serves plain HTTP and join keys cross the network in clear text");
    let apiPort = config.api.port;
    const controllerInfo = (ctx: RouteContext) =>
      tls && { caHash: tls.caHash, urls: apiUrls({ sans: tls.sans, listenHost: config.api.listenHost, port: apiPort, requestHost: ctx.host }) };
    const countedEnrollment = {
      enroll: async (...args: Parameters<Enrollment["enroll"]>) => {
        try {
          const enrolled = await enrollment.enroll(...args);
          metrics.recordEnrollment("enrolled");
          return enrolled;
        } catch (err) {
          metrics.recordEnrollment("refused", err instanceof ControllerError ? err.code : "internal");
          throw err;
        }
      },
    };
    const routes = [
      ...apiRoutes({ joinKeys, enrollment: countedEnrollment, attestor, enrollmentPolicies, registry, identities, policies, inventory, planner, controllerInfo, counters, policyDelivery: (id) => publisher.delivery(id) }),
      ...consoleRoutes({
        adminToken,
        sessions,
        events,
        metrics,
        flows: () => flows.view(),
        matrixInput: async () => ({ policies: await policies.list(), identities: await identities.list(), nodes: await registry.list() }),
      }),
      ...downloadRoutes({ dir: config.downloads.dir, caPem: tls?.caPem }),
    ];
    const serverOptions = {
      routes,
      adminToken,
      metricsToken,
      sessions,
      counters,
      log: apiLog,
      version: CONTROLLER_VERSION,
      onResponse: (method: string, route: string, status: number, seconds: number) => metrics.recordApiRequest(method, route, status, seconds),
    };
    const tcp = buildApiServer({
      ...serverOptions,
      rateLimit: config.api.rateLimit,
      ...(withConsole ? { extend: (app: FastifyInstance) => serveConsole(app, consoleDir) } : {}),
      ...(tls ? { https: tls.serverOptions() } : {}),
    });
    const apiUrl = await tcp.listen({ host: config.api.listenHost, port: config.api.port });
    cleanups.push(() => tcp.close());
    apiPort = Number(new URL(apiUrl).port);
    if (tls) {
      const renewal = tls.renewEvery(CERT_CHECK_INTERVAL_MS, (current) => replaceCertificate(tcp, current));
      cleanups.push(async () => renewal.stop());
    }
    const apiSocket = config.api.socket ?? join(config.stateDir, ControllerFiles.apiSocket);
    let unix: FastifyInstance | undefined;
    if (apiSocket !== "") {
      await rm(apiSocket, { force: true });
      unix = buildApiServer(serverOptions);
      await unix.listen({ path: apiSocket });
      cleanups.push(() => unix!.close());
    }
    inventory.start();
    log
      .child({ component: "controller" })
      .info({ api: apiUrl, caHash: tls?.caHash, socket: apiSocket || undefined, nats: natsUrl, embedded: Boolean(embedded), overlay: config.overlay.cidr, workloads: config.overlay.workloadCidr }, "controller ready");
    return { config, apiUrl, caHash: tls?.caHash, caPem: tls?.caPem, apiSocket: apiSocket || undefined, natsUrl, adminToken, metricsToken, authority, nc, inventory, counters, identityReaper, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The addresses agents reach this controller at: the API's (its listen address when specific,
 * the IPs among its certificate names, every IPv4 address of the host) and NATS's (the advertised
 * URLs' hosts, the embedded server's listen address). No site route may cover one.
 */
export function controllerAddresses(config: ControllerConfig, embeddedNats: boolean): { address: string; what: string }[] {
  const ipv4 = (h: string | undefined) => (h !== undefined && parseIpv4(h) !== undefined && h !== "0.0.0.0" ? [h] : []);
  const host = hostIpv4Addresses();
  const api = [...ipv4(config.api.listenHost), ...(config.api.tls.sans ?? []).flatMap((n) => ipv4(n)), ...host];
  const natsHosts = [...config.nats.advertise, ...(config.nats.url ? [config.nats.url] : [])].flatMap((u) => {
    try {
      return ipv4(new URL(u).hostname);
    } catch {
      return [];
    }
  });
  const nats = [...natsHosts, ...(embeddedNats ? [...ipv4(config.nats.listenHost), ...host] : [])];
  const out = new Map<string, string>();
  for (const a of api) out.set(a, "API");
  for (const a of nats) out.set(a, out.has(a) ? "API and NATS" : "NATS");
  return [...out].map(([address, what]) => ({ address, what }));
}
