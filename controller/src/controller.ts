/**
 * The controller process: NATS (embedded or external), the KV-backed services,
 * the heartbeat listener and the REST API, started and stopped as one unit.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Buckets, EnrollmentPolicy, Heartbeat, NodeRecord, PeerRecord, Policy, Subjects, nodeIdFromSubject } from "@weft/protocol";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { loadOrCreateAdminToken } from "./admin-token.js";
import { buildApiServer, replaceCertificate } from "./api/server.js";
import { apiRoutes, type RouteContext } from "./api/routes.js";
import { downloadRoutes } from "./install/downloads.js";
import { ControllerConfig, type ControllerConfigInput } from "./config.js";
import { Enrollment } from "./enroll/enroll.js";
import { EnrollmentPolicies } from "./enroll/policies.js";
import { IdentityAllocator, IdentityEntry } from "./identity/allocator.js";
import { validateIdentityLabels } from "./identity/labels.js";
import { AddressAllocator } from "./ipam/allocator.js";
import { Claim, Claims } from "./ipam/claims.js";
import { PrefixAllocator } from "./ipam/prefixes.js";
import { SiteRouteAdvertiser, withdrawSiteRoutes } from "./inventory/advertise.js";
import { InventoryStore } from "./inventory/store.js";
import { InventorySync, type InventoryPlan } from "./inventory/sync.js";
import { JoinKeys, StoredJoinKey } from "./keys/joinkeys.js";
import { Liveness } from "./nodes/liveness.js";
import { NodeRegistry } from "./nodes/registry.js";
import { NatsAccess, connectController, ensureBuckets, loadOrCreateAuthority, superviseEmbeddedNats, type Authority, type SupervisedNats } from "./nats/index.js";
import { PolicyService } from "./policy/policies.js";
import { NodePolicyPublisher } from "./policy/publisher.js";
import { RecordStore } from "./store/kv.js";
import { ApiTls, TLS_DIR, apiUrls, hostIpv4Addresses, requiredSans } from "./tls/index.js";
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
  authority: Authority;
  nc: NatsConnection;
  /** The cloud inventory sync (idle when inventory.accounts is empty). */
  inventory: InventorySync;
  stop(): Promise<void>;
}

export async function startController(input: ControllerConfigInput, log: Logger): Promise<RunningController> {
  const config = parseOrThrow(ControllerConfig, input, "controller config");
  const authority = await loadOrCreateAuthority(join(config.stateDir, "authority"));
  const adminToken = config.adminToken ?? (await loadOrCreateAdminToken(config.stateDir));
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

    const kvm = new Kvm(nc);
    const claims = new Claims(new RecordStore(await kvm.open(Buckets.ipam), Claim, Buckets.ipam));
    const allocator = new AddressAllocator(claims, config.overlay.cidr);
    const prefixes = new PrefixAllocator(claims, config.overlay.workloadCidr, config.overlay.workloadPrefixLength);
    const liveness = new Liveness(config.offlineAfterSeconds * 1000);
    const registry = new NodeRegistry({
      nodes: new RecordStore(await kvm.open(Buckets.nodes), NodeRecord, Buckets.nodes),
      peers: new RecordStore(await kvm.open(Buckets.peers), PeerRecord, Buckets.peers),
      claims,
      allocator,
      prefixes,
      liveness,
      log: log.child({ component: "registry" }),
      revokeCredential: (natsPublicKey) => access.revokeAgent(natsPublicKey),
      plaintextSites: config.overlay.plaintextSites,
    });
    await registry.syncSameSiteTransport();
    const trustDomain = config.identity.trustDomain;
    const joinKeys = new JoinKeys(new RecordStore(await kvm.open(Buckets.keys), StoredJoinKey, Buckets.keys), undefined, (labels) =>
      validateIdentityLabels(labels, trustDomain),
    );
    const identities = new IdentityAllocator(new RecordStore(await kvm.open(Buckets.identities), IdentityEntry, Buckets.identities));
    const policies = new PolicyService({
      store: new RecordStore(await kvm.open(Buckets.policies), Policy, Buckets.policies),
      identities: () => identities.list(),
      nodes: () => registry.list(),
      resolveNode: (idOrName) => registry.resolve(idOrName),
      workloadsOf: async (nodeId) => (await registry.peer(nodeId))?.workloads ?? [],
      log: log.child({ component: "policy" }),
    });
    const publisher = await NodePolicyPublisher.start({
      kv: {
        policies: await kvm.open(Buckets.policies),
        identities: await kvm.open(Buckets.identities),
        nodes: await kvm.open(Buckets.nodes),
        peers: await kvm.open(Buckets.peers),
        nodePolicies: await kvm.open(Buckets.nodePolicies),
      },
      log: log.child({ component: "policy-publisher" }),
    });
    cleanups.push(() => publisher.stop());
    const workloads = new WorkloadService({ registry, allocateIdentity: (spiffeId) => identities.allocate(spiffeId), trustDomain, log: log.child({ component: "workloads" }) });
    const workloadsSub = workloads.serve(nc);
    cleanups.push(async () => workloadsSub.unsubscribe());
    const advertisedNats = config.nats.advertise;
    const natsPort = embedded ? String(embedded.port) : new URL(natsUrl).port || "4222";
    // Join by instance identity: the inventory the join checks read and bind, and the keyless-join policies.
    const enrollInventory = new InventoryStore(await kvm.open(Buckets.inventory));
    const enrollmentPolicies = new EnrollmentPolicies({
      store: new RecordStore(await kvm.open(Buckets.enrollPolicies), EnrollmentPolicy, Buckets.enrollPolicies),
      validateLabels: (labels) => validateIdentityLabels(labels, trustDomain),
      log: log.child({ component: "enrollment-policies" }),
    });
    const enrollment = new Enrollment({
      inventory: enrollInventory,
      policies: enrollmentPolicies,
      joinKeys,
      claims,
      allocator,
      prefixes,
      registry,
      issueAgentJwt: (nodeId, natsPublicKey) => authority.issueAgentUser({ nodeId, userPublicKey: natsPublicKey }),
      natsServersFor: (apiHost) => (advertisedNats.length > 0 ? advertisedNats : [`nats://${apiHost ?? "127.0.0.1"}:${natsPort}`]),
      allocateIdentity: (spiffeId) => identities.allocate(spiffeId),
      trustDomain,
      heartbeatSeconds: config.heartbeatSeconds,
      log: log.child({ component: "enroll" }),
    });

    // Cloud inventory: periodic sync, labels and identity from tags, auto-revoke of gone instances.
    const inventory = new InventorySync({
      kv: await kvm.open(Buckets.inventory),
      config: config.inventory,
      registry,
      nodes: new RecordStore(await kvm.open(Buckets.nodes), NodeRecord, Buckets.nodes),
      allocateIdentity: (spiffeId) => identities.allocate(spiffeId),
      trustDomain,
      reserved: [
        { cidr: config.overlay.cidr, what: "overlay.cidr" },
        { cidr: config.overlay.workloadCidr, what: "overlay.workloadCidr" },
      ],
      onSynced: async (plan): Promise<void> => advertiser?.refresh(plan.gateways),
      log: log.child({ component: "inventory" }),
    });
    cleanups.push(() => inventory.stop());
    // Site routes: one weft:gateway node per site advertises the site's networks to the others.
    const advertiser: SiteRouteAdvertiser | undefined = config.inventory.advertiseSiteRoutes
      ? new SiteRouteAdvertiser({
          plan: (): Promise<InventoryPlan> => inventory.plan(),
          registry,
          liveness,
          nodesKv: await kvm.open(Buckets.nodes),
          startDelayMs: Math.ceil(config.heartbeatSeconds * 1.5 * 1000),
          checkMs: config.heartbeatSeconds * 1000,
          resyncMs: SITE_ROUTE_RESYNC_MS,
          log: log.child({ component: "site-routes" }),
        })
      : undefined;
    if (advertiser) {
      await advertiser.start();
      cleanups.push(async () => advertiser.stop());
    } else {
      await withdrawSiteRoutes(registry, log.child({ component: "site-routes" }));
    }

    const heartbeats = listenForHeartbeats(nc, liveness, registry, log.child({ component: "liveness" }));
    cleanups.push(async () => heartbeats.unsubscribe());

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
    const routes = [...apiRoutes({ joinKeys, enrollment, enrollmentPolicies, registry, identities, policies, inventory, controllerInfo }), ...downloadRoutes({ dir: config.downloads.dir, caPem: tls?.caPem })];
    const tcp = buildApiServer({ routes, adminToken, log: apiLog, version: CONTROLLER_VERSION, ...(tls ? { https: tls.serverOptions() } : {}) });
    const apiUrl = await tcp.listen({ host: config.api.listenHost, port: config.api.port });
    cleanups.push(() => tcp.close());
    apiPort = Number(new URL(apiUrl).port);
    if (tls) {
      const renewal = tls.renewEvery(CERT_CHECK_INTERVAL_MS, (current) => replaceCertificate(tcp, current));
      cleanups.push(async () => renewal.stop());
    }
    const apiSocket = config.api.socket ?? join(config.stateDir, "api.sock");
    let unix: FastifyInstance | undefined;
    if (apiSocket !== "") {
      await rm(apiSocket, { force: true });
      unix = buildApiServer({ routes, adminToken, log: apiLog, version: CONTROLLER_VERSION });
      await unix.listen({ path: apiSocket });
      cleanups.push(() => unix!.close());
    }
    inventory.start();
    log
      .child({ component: "controller" })
      .info({ api: apiUrl, caHash: tls?.caHash, socket: apiSocket || undefined, nats: natsUrl, embedded: Boolean(embedded), overlay: config.overlay.cidr, workloads: config.overlay.workloadCidr }, "controller ready");
    return { config, apiUrl, caHash: tls?.caHash, caPem: tls?.caPem, apiSocket: apiSocket || undefined, natsUrl, adminToken, authority, nc, inventory, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function listenForHeartbeats(nc: NatsConnection, liveness: Liveness, registry: NodeRegistry, log: Logger): Subscription {
  // Last interface epoch written per node, so a heartbeat costs a KV write only when it changes.
  const epochs = new Map<string, string>();
  const noteEpoch = (nodeId: string, epoch: string | undefined) => {
    if (epoch === undefined || epochs.get(nodeId) === epoch) return;
    epochs.set(nodeId, epoch);
    registry.setSessionEpoch(nodeId, epoch).catch((err: unknown) => {
      epochs.delete(nodeId); // try again with the next heartbeat
      log.warn({ node: nodeId, err }, "cannot record the node's session epoch");
    });
  };
  return nc.subscribe(Subjects.allHeartbeats, {
    callback: (err, msg) => {
      if (err) {
        log.warn({ err }, "heartbeat subscription error");
        return;
      }
      const subjectNode = nodeIdFromSubject(msg.subject);
      let parsed: ReturnType<typeof Heartbeat.safeParse>;
      try {
        parsed = Heartbeat.safeParse(msg.json());
      } catch {
        log.warn({ subject: msg.subject }, "dropping heartbeat that is not JSON");
        return;
      }
      if (!parsed.success || parsed.data.nodeId !== subjectNode) {
        log.warn({ subject: msg.subject }, "dropping malformed heartbeat or one naming another node");
        return;
      }
      liveness.record(parsed.data);
      noteEpoch(parsed.data.nodeId, parsed.data.sessionEpoch);
    },
  });
}
