/**
 * Names on the wire: KV buckets, NATS subjects and identifier formats shared by
 * controller, agent and CLI. Never rename a bucket or subject in place; add a new
 * version instead.
 */

export const PROTOCOL_VERSION = 1 as const;

/** JetStream KV buckets. Only the controller writes any of them. */
export const Buckets = {
  /** Full node records (labels, join key used, liveness). Controller only. */
  nodes: "weft-nodes",
  /** One public record per node; every agent watches this bucket. */
  peers: "weft-peers",
  /** One key per allocated overlay address, value = owning node id. */
  ipam: "weft-ipam",
  /** Join keys, stored hashed. Controller only. */
  keys: "weft-keys",
  /** SPIFFE ID ↔ numeric identity, allocated once and never reused. Controller only. */
  identities: "weft-identities",
  /** Policies, one key per policy name (see Policy). Controller only for now. */
  policies: "weft-policies",
  /**
   * Each node's compiled policy (NodePolicy), one key per node id. An agent may
   * read only its own key: what other nodes enforce is not its business.
   */
  nodePolicies: "weft-node-policies",
  /** Enrollment policies (keyless join by instance identity), one key per policy name. Controller only. */
  enrollPolicies: "weft-enroll-policies",
  /**
   * Cloud inventory (see InventoryInstance): `i.<provider>.<account>.<id>` per instance,
   * `n.<provider>.<account>.<id>` per network, `s.<provider>.<account>` per account's last sync.
   * Controller only.
   */
  inventory: "weft-inventory",
  /**
   * Each node's path plan (NodePathsRecord), one key per node id: the relay to use for each
   * peer it cannot reach directly, the hole-punching rounds, and on a relay node the sessions it
   * forwards. An agent may read only its own key. Controller only (the path coordinator).
   */
  nodePaths: "weft-node-paths",
  /**
   * Enrollment nonces (`POST /v1/enroll/nonce`), `azure.<nonce>` each, single use and short-lived;
   * the bucket's max age drops them. Controller only.
   */
  enrollNonces: "weft-enroll-nonces",
  /**
   * Signed instance documents already used, one key per instance (`<provider>.<account>.<id>`):
   * the AWS launch (`pendingTime`) or GCP token (`iat`) last enrolled, so none is used twice.
   * Controller only.
   */
  attestations: "weft-attestations",
  /** Services (see ServiceRecord), one key `<namespace>.<name>` per service. Controller only. */
  services: "weft-services",
  /**
   * Each node's compiled services (NodeServicesRecord), one key per node id: what its identities
   * may call and the health checks it runs. An agent may read only its own key.
   */
  nodeServices: "weft-node-services",
  /**
   * The trust domain's bundle (TrustBundle, key `bundle`): CA certificates and JWT keys. Every
   * agent reads it; only the controller writes it.
   */
  trustBundle: "weft-trust-bundle",
  /**
   * The controllers' leader lease: one key (`lease`), taken and renewed with compare-and-set by
   * the controller that does the singleton work. Controller only.
   */
  leader: "weft-leader",
  /**
   * Each node's liveness as the leader last judged it (`online`/`offline`, last heartbeat), one
   * key per node id, written when it changes, so a new leader starts from it. Controller only.
   */
  liveness: "weft-liveness",
  /**
   * Revoked agent credentials: one key per user public nkey (`U…`), value the unix second up to
   * which that user's JWTs are refused. Every controller folds it into the account JWT it signs
   * and pushes, so a node deleted through any controller is revoked by all. Controller only.
   */
  revocations: "weft-revocations",
} as const;

export type BucketName = (typeof Buckets)[keyof typeof Buckets];

/**
 * Files in the controller's state directory that other processes on its host read: the CLI and the
 * lab take the admin token and the API's CA from there and reach the API over the unix socket.
 */
export const ControllerFiles = {
  /** The admin bearer token, mode 0600. */
  adminToken: "admin-token",
  /** The REST API's unix socket (unless `api.socket` puts it elsewhere). */
  apiSocket: "api.sock",
  /** The API's TLS material: `tls/ca.crt`, `tls/ca.hash` (the pin agents use), the server certificate. */
  tlsDir: "tls",
  caCert: "ca.crt",
  caHash: "ca.hash",
} as const;

/** Node ids are `n-` plus 16 lowercase hex digits: safe as a NATS subject token and KV key. */
export const NODE_ID_PATTERN = /^n-[0-9a-f]{16}$/;

export const Subjects = {
  /** Root of everything a node may publish. */
  nodeRoot: (nodeId: string) => `weft.v1.node.${nodeId}`,
  /** Agent → controller liveness and status, see Heartbeat. */
  heartbeat: (nodeId: string) => `weft.v1.node.${nodeId}.heartbeat`,
  /** Wildcard the controller subscribes to for all heartbeats. */
  allHeartbeats: "weft.v1.node.*.heartbeat",
  /**
   * Agent → controller request (reply on the agent's inbox): the node's whole set of
   * workloads (WorkloadsRequest → WorkloadsReply). Declarative: workloads left out are removed.
   */
  workloads: (nodeId: string) => `weft.v1.node.${nodeId}.workloads`,
  /** Wildcard the controller serves workload requests on. */
  allWorkloads: "weft.v1.node.*.workloads",
  /** Agent → controller: this node's public endpoint moved (EndpointsUpdate). */
  endpoints: (nodeId: string) => `weft.v1.node.${nodeId}.endpoints`,
  /** Wildcard the controller listens to for endpoint updates. */
  allEndpoints: "weft.v1.node.*.endpoints",
  /**
   * Agent → controller request (reply on the agent's inbox): a fresh NATS user JWT for the same
   * nkey (CredentialsRequest → CredentialsReply), asked for well before the current one expires.
   */
  credentials: (nodeId: string) => `weft.v1.node.${nodeId}.credentials`,
  /**
   * Agent → controller request (reply on the agent's inbox): the node's new WireGuard public key
   * (KeyRotationRequest → KeyRotationReply); answered once the node and peer records carry it.
   */
  wireguardKey: (nodeId: string) => `weft.v1.node.${nodeId}.wgkey`,
  /** Wildcard the controller serves key rotations on. */
  allWireguardKeys: "weft.v1.node.*.wgkey",
  /** Wildcard the controller serves credential renewals on. */
  allCredentials: "weft.v1.node.*.credentials",
  /**
   * Every write of the peers bucket, republished by the stream once stored, with its sequence
   * (`Nats-Sequence`) and key (`Nats-Subject`): `weft.v1.peers.<nodeId>`. Agents follow it with a
   * core subscription (no consumer) and read the current records with a batched direct get.
   */
  peerUpdates: (nodeId: string) => `weft.v1.peers.${nodeId}`,
  /** Wildcard agents subscribe to for peer record changes. */
  allPeerUpdates: "weft.v1.peers.>",
  /**
   * Every write of one key of a bucket an agent reads one key of (its compiled policy, services
   * and path plan, the trust bundle), republished by the bucket's stream once stored, with its
   * revision (`Nats-Sequence`): `weft.v1.kv.<bucket>.<key>`. An agent follows its key with a core
   * subscription and needs no read after a change (agent/src/control/key-watch.ts).
   */
  keyUpdates: (bucket: string, key: string) => `weft.v1.kv.${bucket}.${key}`,
  /** Where a bucket's stream republishes the writes of all its keys (the dest of its republish). */
  allKeyUpdates: (bucket: string) => `weft.v1.kv.${bucket}.>`,
  /**
   * Agent → controller request (reply on the agent's inbox): sign a CSR for one SPIFFE ID the node
   * may hold (X509SvidRequest → X509SvidReply).
   */
  x509Svid: (nodeId: string) => `weft.v1.node.${nodeId}.svid.x509`,
  allX509Svids: "weft.v1.node.*.svid.x509",
  /** Agent → controller request: a JWT-SVID for one SPIFFE ID the node may hold (JwtSvidRequest → JwtSvidReply). */
  jwtSvid: (nodeId: string) => `weft.v1.node.${nodeId}.svid.jwt`,
  allJwtSvids: "weft.v1.node.*.svid.jwt",
  /** Agent → controller, once per interval: flow records per identity pair (FlowReport). */
  flows: (nodeId: string) => `weft.v1.node.${nodeId}.flows`,
  /** Wildcard the controller collects flow reports on. */
  allFlows: "weft.v1.node.*.flows",
  /** Agent → controller: verdicts of the health checks the node runs on backends it hosts (HealthReport). */
  serviceHealth: (nodeId: string) => `weft.v1.node.${nodeId}.services.health`,
  allServiceHealth: "weft.v1.node.*.services.health",
  /** Agent → controller: connections this node opened to each service backend (StatsReport). */
  serviceStats: (nodeId: string) => `weft.v1.node.${nodeId}.services.stats`,
  allServiceStats: "weft.v1.node.*.services.stats",
  /** Inbox prefix an agent must use so its replies stay inside its own namespace. */
  inboxPrefix: (nodeId: string) => `_INBOX_${nodeId}`,
} as const;

/** The node id of any subject under `weft.v1.node.<id>.`, or undefined. */
export function nodeIdOfNodeSubject(subject: string): string | undefined {
  const parts = subject.split(".");
  if (parts.length < 5 || parts[0] !== "weft" || parts[1] !== "v1" || parts[2] !== "node") return undefined;
  const id = parts[3];
  return id !== undefined && NODE_ID_PATTERN.test(id) ? id : undefined;
}

/** Parse the node id out of a heartbeat subject, or undefined if it is not one. */
export function nodeIdFromSubject(subject: string): string | undefined {
  const parts = subject.split(".");
  if (parts.length !== 5 || parts[0] !== "weft" || parts[1] !== "v1" || parts[2] !== "node") return undefined;
  const id = parts[3];
  return id !== undefined && NODE_ID_PATTERN.test(id) ? id : undefined;
}
