/**
 * The controller process: NATS (embedded, or an external server or cluster), the KV-backed
 * services, the heartbeat listener and the REST API, started and stopped as one unit. Several
 * controllers may share one store: every one serves the API and records liveness; the singleton
 * work (policy publishing, gateway choice, inventory sync and auto-revoke, storing liveness, NAT
 * path coordination and moved endpoints) runs only in the leader (leader/election.ts), fenced by its lease.
 */
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import { Buckets, ControllerFiles, NodeRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { retry } from "@weft/util";
import { METRICS_TOKEN_FILE, loadOrCreateAdminToken, loadOrCreateToken } from "./admin-token.js";
import { buildApiServer, replaceCertificate } from "./api/server.js";
import { apiRoutes, type RouteContext } from "./api/routes.js";
import { openInstanceAttestor } from "./attest/index.js";
import { ControllerConfig, overlayRanges, type ControllerConfigInput } from "./config.js";
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
import { OrphanReaper } from "./ipam/orphans.js";
import { PrefixAllocator } from "./ipam/prefixes.js";
import { SiteRouteAdvertiser, withdrawSiteRoutes } from "./inventory/advertise.js";
import { InventoryPlanner } from "./inventory/plan.js";
import { siteOfInstance } from "./inventory/sites.js";
import { InventorySync } from "./inventory/sync.js";
import { JoinKeys } from "./keys/joinkeys.js";
import { serveCredentialRenewal } from "./nodes/credentials.js";
import { ControllerCounters } from "./metrics/counters.js";
import { ControllerMetrics } from "./metrics/metrics.js";
import { PathCoordinator } from "./nat/coordinator.js";
import { listenForEndpointUpdates } from "./nat/endpoints.js";
import { NodeCache } from "./nat/node-cache.js";
import { LeaderElection } from "./leader/election.js";
import { ToLeader } from "./leader/forward.js";
import { fencedRegistry, fencedStore } from "./leader/fence.js";
import { listenForHeartbeats } from "./nodes/heartbeats.js";
import { Liveness } from "./nodes/liveness.js";
import { LivenessRecorder, seedLiveness } from "./nodes/liveness-store.js";
import { observeControlPlane } from "./nodes/observer.js";
import { MalformedMessages } from "./nodes/malformed.js";
import { serveKeyRotation } from "./nodes/rotation.js";
import { NodeRegistry } from "./nodes/registry.js";
import { NatsAccess, connectController, ensureBuckets, loadOrCreateAuthority, superviseEmbeddedNats, type Authority, type SupervisedNats } from "./nats/index.js";
import { PolicyService } from "./policy/policies.js";
import { SharedRevocations } from "./revocations/shared.js";
import { NodePolicyPublisher } from "./policy/publisher.js";
import { ServiceCatalog } from "./services/catalog.js";
import { ServiceHealth } from "./services/health.js";
import { NodeServicesPublisher } from "./services/publisher.js";
import { VipAllocator } from "./services/vips.js";
import { SPIFFE_DIR, SvidService, TrustDomainAuthority, publishTrustBundle } from "./spiffe/index.js";
import { classifyStoreError, explainStoreError } from "./store/failures.js";
import { BucketMirror } from "./store/mirror.js";
import { openStores } from "./store/stores.js";
import { ApiTls, SERVER_CERT_FILE, SERVER_KEY_FILE, TLS_DIR, apiUrls, hostIpv4Addresses, requiredSans } from "./tls/index.js";
import { parseIpv4 } from "@weft/protocol";
import { parseOrThrow } from "./validation.js";
import { WorkloadService } from "./workloads/service.js";

export const CONTROLLER_VERSION = "0.1.0";
/** How often a running controller checks whether the API certificate needs reissuing. */
const CERT_CHECK_INTERVAL_MS = 12 * 3600_000;
/** Site routes are re-published this often even when nothing signalled a change. */
const SITE_ROUTE_RESYNC_MS = 60_000;
/** How often revocations whose credentials have all expired are pruned. */
const REVOCATION_PRUNE_INTERVAL_MS = 3600_000;

export interface RunningController {
  config: ControllerConfig;
  /** URL of the TCP API, e.g. https://0.0.0.0:8080 (http:// when api.tls.enabled is false). */
  apiUrl: string;
  /** Pin of the controller's CA for `--ca-hash` (sha256:…); undefined when the API is plain HTTP. */
  caHash: string | undefined;
  /** The controller's CA certificate (PEM); undefined when the API is plain HTTP. */
  caPem: string | undefined;
  apiSocket: string | undefined;
  /** The first NATS URL the controller uses (the embedded server's, or the first configured). */
  natsUrl: string;
  /** Every NATS URL the controller uses (several on a cluster). */
  natsUrls: string[];
  /** The CA (PEM) the NATS server's certificate chains to (the controller's own unless nats.caFile). */
  natsCaPem: string;
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
  /** Releases claims an interrupted enrollment or deletion left (tests call sweep()). */
  orphanReaper: OrphanReaper;
  /** This controller's part in the leader election (isLeader(), leader()). */
  election: LeaderElection;
  stop(): Promise<void>;
}

export async function startController(input: ControllerConfigInput, log: Logger): Promise<RunningController> {
  const config = parseOrThrow(ControllerConfig, input, "controller config");
  const authority = await loadOrCreateAuthority(join(config.stateDir, "authority"));
  authority.agentCredentialLifetimeSeconds = config.nats.agentCredentialHours * 3600;
  const adminToken = config.adminToken ?? (await loadOrCreateAdminToken(config.stateDir, log.child({ component: "admin-token" })));
  const metricsToken = config.metrics.token ?? (await loadOrCreateToken(config.stateDir, METRICS_TOKEN_FILE, log.child({ component: "admin-token" })));
  // Nodes by status are counted at scrape time, through the registry once it exists.
  let nodeStatuses: () => Promise<readonly { status: string }[]> = async () => [];
  const counters = new ControllerCounters();
  const metrics = new ControllerMetrics({ nodeStatuses: () => nodeStatuses(), counters });
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log.warn({ err }, "shutdown step failed"));
  };
  try {
    // The controller's CA and server certificate: the API's HTTPS (unless turned off) and, always,
    // the embedded NATS server's TLS. Agents pin the CA.
    const tls = await ApiTls.open({
      dir: join(config.stateDir, TLS_DIR),
      sans: requiredSans({ listenHost: config.api.listenHost, configured: config.api.tls.sans, hostAddresses: hostIpv4Addresses() }),
      log: log.child({ component: "tls" }),
    });
    const external = config.nats.urls ?? (config.nats.url ? [config.nats.url] : undefined);
    let embedded: SupervisedNats | undefined;
    if (!external) {
      embedded = await superviseEmbeddedNats({
        monitorPort: 0,
        stateDir: config.stateDir,
        host: config.nats.listenHost,
        port: config.nats.port,
        authority,
        tls: { certFile: join(config.stateDir, TLS_DIR, SERVER_CERT_FILE), keyFile: join(config.stateDir, TLS_DIR, SERVER_KEY_FILE) },
        ...(config.nats.maxFileStore !== undefined ? { maxFileStore: config.nats.maxFileStore } : {}),
        logger: log.child({ component: "nats" }),
      });
      cleanups.push(() => embedded!.stop());
    }
    const natsUrls = external ?? [embedded!.url];
    const natsUrl = natsUrls[0]!;
    const natsCaPem = external && config.nats.caFile ? await readFile(config.nats.caFile, "utf8") : tls.caPem;
    const nc = await connectController({ servers: natsUrls, authority, caPem: natsCaPem, name: "weft-controller", logger: log.child({ component: "nats-client" }) });
    cleanups.push(() => nc.drain());
    const access = await NatsAccess.connect({ servers: natsUrls, authority, caPem: natsCaPem, logger: log.child({ component: "nats-access" }) });
    cleanups.push(() => access.close());
    // A cluster that just started elects its JetStream meta leader first: wait for it (about a minute at most).
    const natsLog = log.child({ component: "nats-client" });
    await retry(() => ensureBuckets(nc, { limits: config.nats.buckets, replicas: config.nats.replicas }), {
      initialMs: 500,
      maxMs: 3000,
      maxAttempts: 25,
      retryIf: (err) => classifyStoreError(err) !== "permanent",
      onRetry: (err, delayMs) => natsLog.warn({ err: explainStoreError(err), retryInMs: delayMs }, "waiting for NATS JetStream to create the buckets"),
    });
    const stores = await openStores(nc, (bucket, op, result) => metrics.recordKv(bucket, op, result));
    const election = new LeaderElection({ nc, leaseMs: config.leader.leaseSeconds * 1000, log: log.child({ component: "leader" }) });
    const fence = () => election.isLeader();
    // Revocations live in the store (weft-revocations): every controller takes in all of them, so
    // the account JWT any controller pushes carries every revocation; the leader prunes the bucket.
    const revocations = new SharedRevocations({ store: stores.revocations, authority, access, fence, log: log.child({ component: "revocations" }) });
    await access.prune();
    await revocations.start();
    cleanups.push(() => revocations.stop());
    const pruning = setInterval(() => void revocations.prune(), REVOCATION_PRUNE_INTERVAL_MS);
    pruning.unref();
    cleanups.push(async () => clearInterval(pruning));
    const leaderHint = () => {
      const l = election.leader();
      return l ? `the leader is ${l.holder}${l.api ? ` (${l.api})` : ""}` : "no controller leads right now; retry in a few seconds";
    };

    // Nodes: the registry alone writes node and peer records; at start it brings them in line.
    const claims = new Claims(stores.ipam);
    await claims.follow(log.child({ component: "ipam" }));
    cleanups.push(async () => claims.stop());
    // Claims (and peer records) an interrupted enrollment or deletion left behind are removed after the grace (ipam/orphans.ts).
    const orphanGraceMs = config.overlay.orphanClaimGraceSeconds * 1000;
    const orphanReaper = new OrphanReaper({
      claims,
      peers: stores.peers,
      nodeIds: () => stores.nodes.keys(),
      graceMs: orphanGraceMs,
      intervalMs: Math.min(300_000, orphanGraceMs / 4),
      log: log.child({ component: "ipam" }),
    });
    election.duty({ name: "orphan-reaper", start: () => orphanReaper.start(), stop: () => orphanReaper.stop() });
    const allocator = new AddressAllocator(claims, config.overlay.cidr);
    const prefixes = new PrefixAllocator(claims, config.overlay.workloadCidr, config.overlay.workloadPrefixLength);
    // Liveness: every controller hears every heartbeat and starts from the leader's stored judgement;
    // silence while this controller could not see (NATS down, process frozen) proves nothing.
    const liveness = new Liveness(config.offlineAfterSeconds * 1000);
    await seedLiveness(stores.liveness, liveness, log.child({ component: "liveness" }));
    const observer = observeControlPlane(nc, { liveness, log: log.child({ component: "liveness" }) });
    cleanups.push(async () => observer.stop());
    // Every node record in memory once, for everything that reads the whole fleet on its passes
    // (policy and services publishers, path coordinator, site-route advertiser, console events).
    const nodeMirror = await BucketMirror.start(stores.nodes, NodeRecord, { bucket: Buckets.nodes, log: log.child({ component: "node-mirror" }) });
    cleanups.push(async () => nodeMirror.stop());
    const registry = new NodeRegistry({
      nodes: stores.nodes,
      peers: stores.peers,
      claims,
      allocator,
      prefixes,
      liveness,
      log: log.child({ component: "registry" }),
      // Recorded in this controller's authority and pushed, then in the store for the others.
      revokeCredential: async (natsPublicKey) => {
        const result = await access.revokeAgent(natsPublicKey);
        await revocations.record(natsPublicKey, result.revocation.revokedAt);
        return result;
      },
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
    election.duty({
      name: "node-policies",
      start: async () => {
        published.publisher = await NodePolicyPublisher.start({
          stores: {
            policies: stores.policies,
            identities: stores.identities,
            nodePolicies: fencedStore(stores.nodePolicies, fence, "node policies"),
            nodePolicyChunks: fencedStore(stores.nodePolicyChunks, fence, "node policies"),
          },
          nodes: nodeMirror,
          counters,
          log: log.child({ component: "policy-publisher" }),
          observe: { published: (node, bytes, entries, seconds) => metrics.recordPolicyPublished(node, bytes, entries, seconds), removed: (node) => metrics.recordPolicyRemoved(node) },
        });
      },
      stop: async () => {
        await published.publisher?.stop();
        published.publisher = undefined;
      },
    });
    // Services: the catalog (weft-services, VIPs), backend health and client statistics from the
    // agents, and each node's compiled view (weft-node-services).
    const zone = config.services.zone ?? trustDomain;
    // The two need each other (health reads the publisher's node records, the publisher reads health).
    const wired: { publisher?: NodeServicesPublisher } = {};
    const serviceHealth = new ServiceHealth({
      nc,
      hostedBy: (nodeId) => wired.publisher?.hostedBy(nodeId),
      backendNodes: () => wired.publisher?.backendNodes() ?? [],
      liveness: (nodeId) => liveness.status(nodeId),
      onChange: () => wired.publisher?.schedule(),
      log: log.child({ component: "service-health" }),
    });
    serviceHealth.start();
    cleanups.push(async () => serviceHealth.stop());
    const servicesPublisher = await NodeServicesPublisher.start({
      stores: { services: stores.services, policies: stores.policies, identities: stores.identities, nodeServices: fencedStore(stores.nodeServices, fence, "node services") },
      nodes: nodeMirror,
      healthy: (service, address, nodeId, checked) => serviceHealth.healthy(service, address, nodeId, checked),
      zone,
      serviceCidr: config.overlay.serviceCidr,
      writes: fence,
      log: log.child({ component: "services-publisher" }),
    });
    wired.publisher = servicesPublisher;
    cleanups.push(() => servicesPublisher.stop());
    // Every controller compiles (the API's views read it); the leader writes weft-node-services.
    election.duty({ name: "node-services", start: () => servicesPublisher.resync(), stop: () => undefined });
    const services = new ServiceCatalog({
      store: stores.services,
      vips: new VipAllocator(claims, config.overlay.serviceCidr),
      publisher: servicesPublisher,
      health: serviceHealth,
      resolveNode: (idOrName) => registry.resolve(idOrName),
      zone,
      log: log.child({ component: "services" }),
    });

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
    // Identity numbers nothing references are released after the grace (identity/reaper.ts). The
    // node records from the mirror, not a listing of the bucket every sweep: one lagging by a
    // delivery can only delay a mark (a release needs the whole grace unreferenced, and allocate()
    // clearing a mark fails the release's compare-and-set).
    const identityReaper = new IdentityReaper({
      identities,
      nodes: async () => [...nodeMirror.entries.values()],
      graceMs: releaseAfterMs,
      intervalMs: Math.min(60_000, Math.max(1000, releaseAfterMs / 4)),
      counters,
      log: log.child({ component: "identities" }),
    });
    election.duty({ name: "identity-reaper", start: () => identityReaper.start(), stop: () => identityReaper.stop() });

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
    const natsHost = (apiHost: string | undefined) => (apiHost === undefined ? "127.0.0.1" : apiHost.includes(":") ? `[${apiHost}]` : apiHost);
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
      natsServersFor: (apiHost) =>
        advertisedNats.length > 0 ? advertisedNats : external && external.length > 1 ? external.map((u) => u.replace(/^nats:\/\//, "tls://")) : [`tls://${natsHost(apiHost)}:${natsPort}`],
      natsCaPem,
      allocateIdentity,
      trustDomain,
      heartbeatSeconds: config.heartbeatSeconds,
      giveUpAfterMs: orphanGraceMs / 2,
      log: log.child({ component: "enroll" }),
    });

    // Cloud inventory: its view and gateway plan; the site route advertiser publishing the plan
    // (one weft:gateway node per site advertises the site's networks to the others); the periodic
    // sync (labels and identity from tags, auto-revoke of gone instances), which hands each new plan
    // to the advertiser.
    const planner = new InventoryPlanner({
      store: stores.inventory,
      nodes: () => registry.list(),
      reserved: overlayRanges(config.overlay),
      remapPool: config.inventory.remapPool,
      controllerAddresses: controllerAddresses(config, embedded !== undefined),
      sites: config.inventory.sites,
    });
    const routesLog = log.child({ component: "site-routes" });
    const leaderRegistry = fencedRegistry(registry, fence, "site routes and inventory");
    let advertiser: SiteRouteAdvertiser | undefined;
    election.duty({
      name: "site-routes",
      start: async () => {
        if (!config.inventory.advertiseSiteRoutes) {
          await withdrawSiteRoutes(leaderRegistry, routesLog);
          return;
        }
        advertiser = new SiteRouteAdvertiser({
          plan: () => planner.plan(),
          registry: leaderRegistry,
          liveness,
          nodes: nodeMirror,
          startDelayMs: Math.ceil(config.heartbeatSeconds * 1.5 * 1000),
          checkMs: config.heartbeatSeconds * 1000,
          resyncMs: SITE_ROUTE_RESYNC_MS,
          log: routesLog,
        });
        await advertiser.start();
      },
      stop: async () => {
        await advertiser?.stop();
        advertiser = undefined;
      },
    });
    const inventory = new InventorySync({
      store: stores.inventory,
      planner,
      config: config.inventory,
      registry: leaderRegistry,
      allocateIdentity,
      trustDomain,
      fence,
      untilLeading: () => election.untilLeading(),
      leaderHint,
      onSynced: async (plan) => advertiser?.refresh(plan.gateways),
      onAccountSynced: (status, seconds) => metrics.recordInventorySync(status, seconds),
      log: log.child({ component: "inventory" }),
    });
    cleanups.push(() => inventory.stop());
    election.duty({ name: "inventory", start: () => inventory.start(), stop: () => inventory.pause() });
    const recorder = new LivenessRecorder({
      store: stores.liveness,
      liveness,
      nodeIds: () => stores.nodes.keys(), // the keys only: no record read and parsed (10,000 of them at scale)
      fence,
      checkMs: config.heartbeatSeconds * 1000,
      counters,
      log: log.child({ component: "liveness" }),
    });
    election.duty({ name: "liveness", start: () => recorder.start(), stop: () => recorder.stop() });

    const malformed = new MalformedMessages({ log: log.child({ component: "agents" }) });
    // The console's live stream: bucket changes and heartbeats as events (no client: nothing is sent).
    const consoleLog = log.child({ component: "console" });
    const events = new ConsoleEvents({ log: consoleLog });
    cleanups.push(() => events.stop());
    const heartbeats = listenForHeartbeats(nc, { liveness, registry, malformed, writes: fence, heard: () => events.publish("liveness"), log: log.child({ component: "liveness" }) });
    cleanups.push(async () => heartbeats.stop());
    const renewals = serveCredentialRenewal(nc, {
      natsKeyOf: async (nodeId) => (await registry.get(nodeId).catch(() => undefined))?.natsPublicKey,
      issue: (nodeId, natsPublicKey) => authority.issueAgentUser({ nodeId, userPublicKey: natsPublicKey }),
      malformed,
      log: log.child({ component: "credentials" }),
    });
    cleanups.push(async () => renewals.unsubscribe());
    const rotations = serveKeyRotation(nc, { registry, claims, malformed, log: log.child({ component: "wgkey" }) });
    cleanups.push(async () => rotations.unsubscribe());

    // Connectivity across NATs: moved public endpoints (recorded by the leader), and the path
    // coordinator (reflexive endpoints, relays and hole-punching rounds), singleton work in the
    // leader: its node-record and path-plan writes are fenced by the lease, and a new leader reads
    // the plans back (relay ports, round numbers) before its first pass.
    const endpointUpdates = listenForEndpointUpdates(nc, { registry, writes: fence, log: log.child({ component: "endpoints" }) });
    cleanups.push(async () => endpointUpdates.unsubscribe());
    const pathsLog = log.child({ component: "paths" });
    let paths: { cache: NodeCache; coordinator: PathCoordinator } | undefined;
    election.duty({
      name: "paths",
      start: async () => {
        const cache = new NodeCache(nodeMirror);
        cache.start();
        const coordinator = new PathCoordinator({
          nodes: cache,
          store: fencedStore(stores.nodePaths, fence, "node paths"),
          registry: fencedRegistry(registry, fence, "reflexive endpoints"),
          liveness,
          config: {
            relayPorts: config.nat.relayPorts,
            backoff: { initialMs: config.nat.punchBackoffSeconds.initial * 1000, maxMs: config.nat.punchBackoffSeconds.max * 1000 },
          },
          log: pathsLog,
        });
        await coordinator.start().catch((err: unknown) => {
          cache.stop();
          throw err;
        });
        paths = { cache, coordinator };
      },
      stop: async () => {
        const running = paths;
        paths = undefined;
        await running?.coordinator.stop();
        running?.cache.stop();
      },
    });

    // The console: sessions, the live stream from the buckets' watches, flows from the agents' reports.
    const sessions = new ConsoleSessions({ ttlMs: config.console.sessionTtlSeconds * 1000, idleMs: config.console.sessionIdleSeconds * 1000, onCount: (n) => metrics.setConsoleSessions(n) });
    const unlistenEvents = nodeMirror.listen(() => events.publish("nodes"));
    cleanups.push(async () => unlistenEvents());
    events.follow("policies", stores.policies.kv);
    events.follow("identities", stores.identities.kv);
    events.follow("inventory", stores.inventory.kv);
    const flows = new FlowCollector({ log: log.child({ component: "flows" }), onReport: (r) => metrics.recordFlowReport(r), onChange: () => events.publish("flows") });
    const flowsSub = flows.serve(nc);
    cleanups.push(async () => flowsSub.unsubscribe());
    const consoleDir = config.console.dir ?? defaultConsoleDir();
    const withConsole = config.console.enabled && consoleBuilt(consoleDir);
    if (config.console.enabled && !withConsole) consoleLog.warn({ dir: consoleDir }, "the console is not built there (npm run build -w console); serving the API without it");

    const apiLog = log.child({ component: "api" });
    const apiTls = config.api.tls.enabled ? tls : undefined;
    if (!apiTls) apiLog.warn("api.tls.enabled is false: the API serves plain HTTP and join keys cross the network in clear text");
    let apiPort = config.api.port;
    const controllerInfo = (ctx: RouteContext) =>
      apiTls && { caHash: apiTls.caHash, urls: apiUrls({ sans: apiTls.sans, listenHost: config.api.listenHost, port: apiPort, requestHost: ctx.host }) };
    // Singleton work asked of a follower (an inventory sync) is forwarded to the leader's API.
    const toLeader = new ToLeader({ election, adminToken, caPem: apiTls?.caPem, log: apiLog });
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
      ...apiRoutes({
        joinKeys,
        enrollment: countedEnrollment,
        attestor,
        enrollmentPolicies,
        registry,
        identities,
        policies,
        services,
        inventory: { sync: (forwardedBy) => toLeader.orForward("inventory sync", forwardedBy, () => inventory.sync(), (leader) => leader.syncInventory()) },
        planner,
        controllerInfo,
        counters,
        policyDelivery: (id) => published.publisher?.delivery(id),
      }),
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
      ...(apiTls ? { https: apiTls.serverOptions() } : {}),
    });
    const apiUrl = await tcp.listen({ host: config.api.listenHost, port: config.api.port });
    cleanups.push(() => tcp.close());
    apiPort = Number(new URL(apiUrl).port);
    const renewal = tls.renewEvery(CERT_CHECK_INTERVAL_MS, (current) => {
      if (apiTls) replaceCertificate(tcp, current);
      embedded?.reload(); // nats-server rereads its certificate on SIGHUP
    });
    cleanups.push(async () => renewal.stop());
    const apiSocket = config.api.socket ?? join(config.stateDir, ControllerFiles.apiSocket);
    let unix: FastifyInstance | undefined;
    if (apiSocket !== "") {
      await rm(apiSocket, { force: true });
      unix = buildApiServer(serverOptions);
      await unix.listen({ path: apiSocket });
      cleanups.push(() => unix!.close());
    }
    // The lease names this API as other controllers reach it (not a loopback or wildcard listen address).
    const reachable = apiUrls({ sans: tls.sans, listenHost: config.api.listenHost, port: apiPort })[0] ?? apiUrl;
    election.api = apiTls ? reachable : reachable.replace(/^https:/, "http:");
    await election.start();
    cleanups.push(() => election.stop());
    log
      .child({ component: "controller" })
      .info({ api: apiUrl, caHash: tls.caHash, socket: apiSocket || undefined, nats: natsUrls, controller: election.id, embedded: Boolean(embedded), overlay: config.overlay.cidr, workloads: config.overlay.workloadCidr }, "controller ready");
    return { config, apiUrl, caHash: apiTls?.caHash, caPem: apiTls?.caPem, natsCaPem, apiSocket: apiSocket || undefined, natsUrl, natsUrls, adminToken, metricsToken, authority, nc, inventory, counters, identityReaper, orphanReaper, election, stop };
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
