/**
 * Message schemas: what agents, the controller and the CLI send each other,
 * over the REST API and NATS. Every message is versioned; every record carries
 * the KV revision it was read at so receivers apply only newer ones.
 */
import { z } from "zod";
import { InstanceAttestation } from "./attestation.js";
import { caHash } from "./ca-pin.js";
import { NODE_ID_PATTERN } from "./names.js";
import { nonUnicastReason, parseCidr, parseEndpoint, parseIpv4 } from "./net.js";
import { CloudProvider } from "./provider.js";

export const ipv4 = z.string().refine((s) => parseIpv4(s) !== undefined, { message: "must be an IPv4 address like 10.0.0.1" });
export const cidr = z.string().refine((s) => parseCidr(s) !== undefined, { message: "must be an IPv4 CIDR like 10.0.0.0/16" });
export const endpoint = z.string().refine((s) => parseEndpoint(s) !== undefined, { message: "must be ip:port like 203.0.113.7:51820" });
/** An endpoint another host can send to: ip:port with a unicast address (not loopback, link-local, multicast, broadcast or 0.0.0.0). */
export const unicastEndpoint = endpoint.superRefine((s, ctx) => {
  const host = parseEndpoint(s)?.host;
  const why = host === undefined ? undefined : nonUnicastReason(host);
  if (why !== undefined) ctx.addIssue({ code: "custom", message: `must be a unicast address another host can reach: ${host} is ${why}` });
});
export const nodeId = z.string().regex(NODE_ID_PATTERN, "must be a node id like n-0123456789abcdef");
/** A WireGuard public key: standard base64 of 32 bytes. */
export const wireguardKey = z
  .string()
  .regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, "must be a WireGuard public key (44 characters of base64)");
/** A NATS user public nkey. */
export const natsUserKey = z.string().regex(/^U[A-Z2-7]{55}$/, "must be a NATS user public nkey (56 characters starting with U)");
export const nodeName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, "must be a DNS label: lowercase letters, digits and '-'");
export const siteName = nodeName;
export const labelKey = z.string().min(1).max(63).regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/, "label keys are letters, digits and _.:/-");
export const labels = z.record(labelKey, z.string().max(253));
/** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, the form Istio uses. */
export const SPIFFE_ID_PATTERN = /^spiffe:\/\/([a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?)\/ns\/([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\/sa\/([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)$/;
export const spiffeId = z.string().regex(SPIFFE_ID_PATTERN, "must be spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> in lower case");
/** A node's or workload's identity: its SPIFFE ID and the stable number the datapath uses. */
export const Identity = z.object({ id: z.number().int().min(256).max(0xffffffff), spiffeId });
export type Identity = z.infer<typeof Identity>;
export const sessionEpoch = z.string().regex(/^[0-9a-f]{16}$/, "must be 16 lowercase hex digits");

// ---------------------------------------------------------------- instance selectors

/**
 * Which cloud instances may join: every field given must equal the inventory's record of the
 * agent's instance (tags: each listed tag with exactly that value; other tags are ignored). An
 * empty selector matches any instance that is in the inventory.
 */
export const InstanceSelector = z
  .object({
    provider: CloudProvider.optional(),
    /** AWS account id, Azure subscription id, GCP project id, on-prem site name. */
    account: z.string().min(1).max(256).optional(),
    /** AWS region, Azure location, GCP region. */
    region: z.string().min(1).max(128).optional(),
    /** VPC id, VNet resource id, GCE network name, on-prem network name. */
    network: z.string().min(1).max(512).optional(),
    tags: z.record(z.string().min(1).max(256), z.string().max(256)).optional(),
  })
  .strict();
export type InstanceSelector = z.infer<typeof InstanceSelector>;

// ---------------------------------------------------------------- join keys

export const JoinKeyCreateRequest = z
  .object({
    description: z.string().max(200).optional(),
    reusable: z.boolean().default(false),
    /** Lifetime in seconds from now; absent = 24 h. */
    ttlSeconds: z.number().int().min(60).max(365 * 24 * 3600).default(24 * 3600),
    labels: labels.default({}),
    /**
     * The site of every node enrolled with this key: an agent naming another is refused, one naming
     * none gets this one. Required when the labels grant `weft:gateway`. Absent: the site comes from
     * the instance's network (inventory `sites`), else the agent names it (and such a node is never
     * a gateway nor in a plaintext site).
     */
    site: siteName.optional(),
    /**
     * The key works only for an agent that presents a signed instance document
     * (EnrollRequest.attestation) of an instance in the inventory, running, and matching
     * this selector.
     */
    instanceSelector: InstanceSelector.optional(),
  })
  .strict();
export type JoinKeyCreateRequest = z.infer<typeof JoinKeyCreateRequest>;

/** A join key as listed: never contains the secret. */
export const JoinKeyInfo = z.object({
  id: z.string(),
  description: z.string().optional(),
  reusable: z.boolean(),
  labels,
  /** The site the key vouches for. */
  site: siteName.optional(),
  /** Set: the key works only for instances in the inventory that match it. */
  instanceSelector: InstanceSelector.optional(),
  createdAt: z.string(),
  expiresAt: z.string(),
  revokedAt: z.string().optional(),
  uses: z.number().int(),
  state: z.enum(["active", "expired", "revoked", "used"]),
});
export type JoinKeyInfo = z.infer<typeof JoinKeyInfo>;

export const JoinKeyCreated = JoinKeyInfo.extend({
  /** The secret key, shown exactly once. */
  key: z.string(),
  /** How an agent reaches the controller with this key; absent when the API is plain HTTP. */
  controller: z
    .object({
      /** Pin of the controller's CA: `weft agent --ca-hash`. */
      caHash,
      /** https URLs of the API that its certificate covers, best first. */
      urls: z.array(z.string()).optional(),
    })
    .optional(),
});
export type JoinKeyCreated = z.infer<typeof JoinKeyCreated>;

// ---------------------------------------------------------------- enrollment

/**
 * Which instance a node runs on, in the inventory's terms. The controller takes it only from a
 * signed instance document it verified (EnrollRequest.attestation); an agent that sends one
 * itself, unsigned (`instance`), is refused.
 */
export const InstanceIdentityClaim = z
  .object({
    provider: CloudProvider,
    /** The cloud's instance id: i-…, the Azure vmId, the numeric GCE id, the on-prem host name. */
    id: z.string().min(1).max(256),
    /** AWS account id, Azure subscription id, GCP project id. */
    account: z.string().max(256).optional(),
    region: z.string().max(128).optional(),
    zone: z.string().max(128).optional(),
  })
  .strict();
export type InstanceIdentityClaim = z.infer<typeof InstanceIdentityClaim>;

export const EnrollRequest = z
  .object({
    version: z.literal(1),
    /** Required unless `attestation` is given and an enrollment policy matches the instance (keyless join). */
    joinKey: z.string().min(1).max(200).optional(),
    /**
     * The cloud's signed instance document, as the agent read it from its metadata service: the
     * controller verifies it and takes the instance it names (see ./attestation.ts).
     */
    attestation: InstanceAttestation.optional(),
    /** An unsigned claim of an instance (older agents): always refused, since anyone can send one. Send `attestation`. */
    instance: InstanceIdentityClaim.optional(),
    name: nodeName,
    /**
     * The site the agent believes it is in. What vouches for the node (its join key's or enrollment
     * policy's site, or its instance's network) decides: a request naming another site is refused,
     * one naming none gets the vouched site (EnrollResponse.site).
     */
    site: siteName.optional(),
    wireguardPublicKey: wireguardKey,
    natsPublicKey: natsUserKey,
    listenPort: z.number().int().min(1).max(65535),
    endpoints: z
      .object({
        /** Address:port reachable from the same site (a unicast address). */
        private: unicastEndpoint.optional(),
        /** Address:port reachable from the internet (a unicast address); absent when behind NAT. */
        public: unicastEndpoint.optional(),
      })
      .strict(),
    /** Ask for a specific overlay address (e.g. to keep one across a rebuild); refused when taken. */
    overlayAddress: ipv4.optional(),
  })
  .strict()
  .refine((r) => r.joinKey !== undefined || r.attestation !== undefined || r.instance !== undefined, {
    path: ["joinKey"],
    message: "required unless the request carries an instance identity (keyless join through an enrollment policy)",
    // Also when other fields are wrong, so a request missing everything still names joinKey.
    when: (p) => typeof p.value === "object" && p.value !== null && !Array.isArray(p.value),
  });
export type EnrollRequest = z.infer<typeof EnrollRequest>;

export const EnrollResponse = z.object({
  nodeId,
  /** The node's site, as what vouched for it says (absent from controllers before sites were bound). */
  site: siteName.optional(),
  overlayAddress: ipv4,
  /** The whole overlay range the agent routes through its interface. */
  overlayCidr: cidr,
  nats: z.object({
    /** `tls://host:port` URLs; agents refuse plaintext `nats://`. */
    servers: z.array(z.string()).min(1),
    userJwt: z.string(),
    /** The CA (PEM) the NATS servers' certificates chain to: the only one the agent trusts for NATS. */
    caPem: z.string().optional(),
  }),
  heartbeatSeconds: z.number().int().positive(),
  /** This node's workload prefix (addresses for its workloads), routed to it by every peer. */
  workloadPrefix: cidr.optional(),
  /** The whole workload range, routed through the interface like overlayCidr. */
  workloadCidr: cidr.optional(),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;

// ---------------------------------------------------------------- enrollment policies (KV weft-enroll-policies)

/**
 * Keyless join: an agent that presents a signed instance document and no join key is enrolled
 * when the instance it names is in the inventory, running, passes the source-address rule and
 * matches the selector of a policy; the node gets the policy's labels. When several policies match, the first by name wins.
 */
export const EnrollmentPolicy = z
  .object({
    name: nodeName,
    description: z.string().max(200).optional(),
    /** Which instances may join; provider is required so a policy never spans every cloud by accident. */
    selector: InstanceSelector.extend({ provider: CloudProvider }).strict(),
    /** The site of the nodes this policy admits (else their instance's network's site, inventory `sites`). */
    site: siteName.optional(),
    /** Labels granted to the nodes enrolled through this policy (identity labels included). */
    labels: labels.default({}),
  })
  .strict();
export type EnrollmentPolicy = z.infer<typeof EnrollmentPolicy>;
export type EnrollmentPolicyInput = z.input<typeof EnrollmentPolicy>;

// ---------------------------------------------------------------- workloads

/** A workload as the controller recorded it: its address in the node's workload prefix and its identity. */
export const Workload = z.object({
  /** Unique on the node; also the agent's handle for the workload. */
  name: nodeName,
  address: ipv4,
  identity: Identity,
});
export type Workload = z.infer<typeof Workload>;

/** One workload the agent asks for: its name and the SPIFFE namespace/service account it runs as. */
export const WorkloadSpec = z
  .object({
    name: nodeName,
    namespace: nodeName,
    serviceAccount: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, "must be a service account name: lowercase letters, digits, '.' and '-'"),
  })
  .strict();
export type WorkloadSpec = z.infer<typeof WorkloadSpec>;

/** Agent → controller on Subjects.workloads(nodeId): every workload the node hosts now. */
export const WorkloadsRequest = z
  .object({
    version: z.literal(1),
    workloads: z.array(WorkloadSpec).max(1024),
  })
  .strict();
export type WorkloadsRequest = z.infer<typeof WorkloadsRequest>;

/**
 * Why a workloads request was refused (WorkloadsReply error.code): `invalid_request` (a field is
 * wrong, named in the message), `forbidden` (an identity the node was not granted), `identity_limit`
 * (more workload identities than the node may hold within the release grace), `not_found` (the
 * node does not exist), `addresses_exhausted` (more workloads than the prefix holds),
 * `store_unavailable` (retry).
 */
export const WorkloadsErrorCodes = ["invalid_request", "forbidden", "identity_limit", "not_found", "addresses_exhausted", "store_unavailable"] as const;

/** The reply: the recorded workloads (same names, stable addresses), or why the request was refused. */
export const WorkloadsReply = z.union([
  z.object({ ok: z.literal(true), workloadPrefix: cidr, workloads: z.array(Workload) }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type WorkloadsReply = z.infer<typeof WorkloadsReply>;

/** How same-site peers carry workload traffic: always WireGuard, or eBPF VXLAN where the site allows plaintext. */
export const SameSiteTransport = z.enum(["wireguard", "vxlan"]);
export type SameSiteTransport = z.infer<typeof SameSiteTransport>;

// ---------------------------------------------------------------- endpoints and NAT traversal

/**
 * How a node's NAT maps its WireGuard port, as public peers see it: `endpoint-independent` when
 * every public peer in another site sees the same address:port (a cone NAT: a peer that learns it
 * can punch through), `endpoint-dependent` when they see different ports (a NAT that picks a port
 * per destination: no direct path between two such nodes; they go through a relay).
 */
export const NatMapping = z.enum(["endpoint-independent", "endpoint-dependent"]);
export type NatMapping = z.infer<typeof NatMapping>;

/**
 * A node's candidate endpoints. `private` and `public` come from the node (enrollment, then
 * `EndpointsUpdate` when its public address moves); `reflexive` and `mapping` are what the
 * controller learned from public peers' WireGuard sessions (the address:port they see this node
 * at), for nodes behind NAT, most-seen first.
 */
export const NodeEndpoints = z.object({
  private: endpoint.optional(),
  public: endpoint.optional(),
  reflexive: z.array(endpoint).max(4).optional(),
  mapping: NatMapping.optional(),
});
export type NodeEndpoints = z.infer<typeof NodeEndpoints>;

/**
 * A site network that overlaps another site's, reached by the other sites through a remapped
 * prefix of the same size: the gateway translates `remapped` to `cidr` (1:1, NETMAP) both ways.
 */
export const SiteRemap = z.object({ cidr, remapped: cidr });
export type SiteRemap = z.infer<typeof SiteRemap>;

/**
 * Agent → controller on Subjects.endpoints(nodeId): this node's public endpoint moved (the
 * cloud's metadata service names a new public address, e.g. after a stop and start). The
 * controller records it in the node record; peers follow through the peer record.
 */
export const EndpointsUpdate = z
  .object({
    version: z.literal(1),
    nodeId,
    public: endpoint,
  })
  .strict();
export type EndpointsUpdate = z.infer<typeof EndpointsUpdate>;

// ---------------------------------------------------------------- peers (KV weft-peers)

/**
 * The public record of a node that every agent reads to configure WireGuard. The controller
 * derives it from the node record (NodeRecord) and rewrites it whenever that changes.
 */
export const PeerRecord = z.object({
  version: z.literal(1),
  nodeId,
  name: nodeName,
  site: siteName,
  wireguardPublicKey: wireguardKey,
  overlayAddress: ipv4,
  /** The node's identity; with overlayAddress this is the ipcache entry every agent builds. */
  identity: Identity.optional(),
  /** CIDRs routed to this peer: its /32 and its workload prefix. */
  allowedIps: z.array(cidr).min(1),
  /**
   * Site networks this node routes to as its site's gateway (from the inventory's site routes).
   * Agents in other sites route them to this peer, unless a route would cover their own site's
   * or the overlay's addresses; agents in the same site reach them directly. See DESIGN.md.
   */
  siteRoutes: z.array(cidr).optional(),
  /** Site networks behind remapped prefixes (the remapped ones are in siteRoutes); the gateway translates them. */
  siteRemaps: z.array(SiteRemap).optional(),
  /**
   * Those of siteRoutes outside private, CGNAT and ULA space that the controller's inventory config
   * allows for this site explicitly; agents refuse any other public range.
   */
  explicitSiteRoutes: z.array(cidr).optional(),
  endpoints: NodeEndpoints,
  /**
   * Changes whenever the node's WireGuard interface is created afresh (boot,
   * interface deleted). A peer that cannot reach this node first (it is behind
   * NAT) drops its old session and handshakes again when it sees a new epoch.
   */
  sessionEpoch: sessionEpoch.optional(),
  /** The node's workload prefix (also in allowedIps). */
  workloadPrefix: cidr.optional(),
  /** The node's workloads: with their identities these are ipcache entries too. */
  workloads: z.array(Workload).optional(),
  /**
   * "vxlan" when the node's site allows plaintext inside the site: a same-site peer that
   * also says "vxlan" sends workload traffic to it as VXLAN (source identity in the VNI) to the
   * address of its private endpoint. Absent = "wireguard".
   */
  sameSiteTransport: SameSiteTransport.optional(),
  /** The node's cloud, when its enrollment proved an instance (for `weft whois`). */
  cloud: CloudProvider.optional(),
  /** The node's labels, except cloud tags and account and instance ids (for `weft whois`). */
  labels: labels.optional(),
  updatedAt: z.string(),
});
export type PeerRecord = z.infer<typeof PeerRecord>;

// ---------------------------------------------------------------- nodes (REST, KV weft-nodes)

/**
 * What vouched for a node's site: its join key, its enrollment policy, its instance's network
 * (inventory `sites`), or nothing but the agent's own request (`request`; then the node is never
 * a gateway and never in a plaintext site). Absent on records written before sites were bound:
 * read as `request`.
 */
export const SiteSource = z.enum(["join-key", "enrollment-policy", "network", "request"]);
export type SiteSource = z.infer<typeof SiteSource>;

export const NodeRecord = z.object({
  version: z.literal(1),
  nodeId,
  name: nodeName,
  site: siteName,
  siteSource: SiteSource.optional(),
  wireguardPublicKey: wireguardKey,
  natsPublicKey: natsUserKey,
  overlayAddress: ipv4,
  endpoints: NodeEndpoints,
  labels,
  identity: Identity.optional(),
  /** The node's workload prefix; absent on nodes enrolled before workloads existed (allocated on their first workloads request). */
  workloadPrefix: cidr.optional(),
  /** The join key the node enrolled with; "" when it joined without one (see enrollmentPolicy). */
  joinKeyId: z.string(),
  /** The enrollment policy a keyless join matched. */
  enrollmentPolicy: z.string().optional(),
  /** The cloud instance the node proved it runs on (its inventory binding); absent when none was checked. */
  instance: z.object({ provider: CloudProvider, account: z.string(), id: z.string() }).optional(),
  /** Source address the controller saw at enrollment. */
  observedAddress: z.string().optional(),
  enrolledAt: z.string(),
  /**
   * The node's workloads (addresses in workloadPrefix, with identities), as its last workloads
   * request set them. Absent on records written before workloads moved here (then the peer record
   * held them; the controller adopts them at start).
   */
  workloads: z.array(Workload).optional(),
  /**
   * Workload identities the node held and dropped, each until `until` (drop time + the identity
   * release grace): they still count towards the node's identity cap and keep the number from
   * being released while agents may still hold policy naming it.
   */
  recentIdentities: z.array(z.object({ identity: Identity, until: z.string() })).optional(),
  /** Site networks this node routes to as its site's gateway (the site route advertiser sets them). */
  siteRoutes: z.array(cidr).optional(),
  /** Which of siteRoutes are remapped prefixes of overlapping site networks, and their real range. */
  siteRemaps: z.array(SiteRemap).optional(),
  /** Those of siteRoutes outside private space that the inventory config allows for the site explicitly. */
  explicitSiteRoutes: z.array(cidr).optional(),
  /** The node's WireGuard interface epoch, from its heartbeats. */
  sessionEpoch: sessionEpoch.optional(),
});
export type NodeRecord = z.infer<typeof NodeRecord>;

/**
 * The path to a peer as the sending node uses it: `direct` (to the peer's own address, private,
 * public or punched through NAT), `relay` (through the relay node `via`; still end-to-end
 * WireGuard), `none` (no endpoint, or no handshake within 180 s).
 */
export const PeerPathKind = z.enum(["direct", "relay", "none"]);
export type PeerPathKind = z.infer<typeof PeerPathKind>;

/** One peer in a heartbeat: what WireGuard shows, and the path and round-trip time the agent measured. */
export const PeerHandshake = z.object({
  publicKey: wireguardKey,
  /** Seconds since epoch of the last handshake; absent when none yet. */
  lastHandshake: z.number().optional(),
  endpoint: z.string().optional(),
  path: PeerPathKind.optional(),
  /** The relay node, when path is `relay`. */
  via: nodeId.optional(),
  /** Round-trip time through the tunnel (a UDP echo between overlay addresses), milliseconds; absent when unanswered. */
  rttMs: z.number().nonnegative().max(600_000).optional(),
  /** Bytes received from and sent to the peer over WireGuard since the interface came up. */
  rxBytes: z.number().int().nonnegative().optional(),
  txBytes: z.number().int().nonnegative().optional(),
});
export type PeerHandshake = z.infer<typeof PeerHandshake>;

/**
 * At most this many peers in one heartbeat: ~190 bytes each, ~95 KiB, well inside an agent's
 * 512 KiB payload limit (controller/src/nats/jwts.ts, AGENT_LIMITS) and a bounded parse for the
 * controller whatever the fleet. A node with more peers reports the ones the controller needs
 * (peers behind NAT, peers it reaches by traversal) first and the others in turns.
 */
export const HEARTBEAT_PEERS_MAX = 500;

export const Heartbeat = z.object({
  version: z.literal(1),
  nodeId,
  sentAt: z.string(),
  /** The agent's current interface epoch; the controller records it in the node's record and peer record. */
  sessionEpoch: sessionEpoch.optional(),
  /** Highest peers-bucket revision the agent has applied. */
  appliedRevision: z.number().int().nonnegative(),
  peers: z.array(PeerHandshake),
  /** How many peers the node has, when `peers` holds only some of them (more than HEARTBEAT_PEERS_MAX). */
  peerCount: z.number().int().nonnegative().optional(),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

export const NodeView = NodeRecord.extend({
  status: z.enum(["online", "offline", "never-seen"]),
  /** Whether the node's compiled policy fits its datapath and is delivered (see PolicyDelivery). */
  policyDelivery: z.object({ state: z.enum(["ok", "oversized"]), mapEntries: z.number().int(), capacity: z.number().int(), since: z.string().optional() }).optional(),
  lastSeen: z.string().optional(),
  appliedRevision: z.number().optional(),
  /** What the node's last heartbeat said of its peers: all of them, or HEARTBEAT_PEERS_MAX of `peerCount`. */
  peers: z.array(PeerHandshake).optional(),
  peerCount: z.number().int().optional(),
});
export type NodeView = z.infer<typeof NodeView>;

/** Error body returned by every REST endpoint. */
export const ApiError = z.object({
  error: z.string(),
  message: z.string(),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type ApiError = z.infer<typeof ApiError>;

// ---------------------------------------------------------------- identities (KV weft-identities)

/** Identities 0-255 are reserved (unknown, host, world, controller, …); allocation starts here. */
export const FIRST_ALLOCATED_IDENTITY = 256;

/** Reserved identities; the same numbers as bpf/progs/lib/ipcache.h WEFT_ID_*. Never renumber. */
export const ReservedIdentities = { unknown: 0, host: 1, world: 2, controller: 3 } as const;

/** Join-key labels that set the identity of the nodes enrolled with the key. */
export const IdentityLabels = {
  /** A whole SPIFFE ID; must be in the controller's trust domain. */
  spiffeId: "weft:identity",
  /** Namespace and service account; the controller adds its trust domain. */
  namespace: "weft:namespace",
  serviceAccount: "weft:serviceaccount",
} as const;

/**
 * Node label making the node its site's gateway: `true` and it may advertise the site's networks
 * (the inventory's site routes) to the other sites. Also read from the cloud tag `weft:gateway`
 * (or `weft-gateway`, `weft_gateway`) of the node's instance.
 */
export const GATEWAY_LABEL = "weft:gateway";

/**
 * Node label (join key, enrollment policy, or the instance tag of that name) granting the
 * workload identities the node may host: `<namespace>/<serviceAccount>` pairs separated by commas
 * or spaces, `<namespace>/*` for every service account of a namespace, `*` for any (GCP label
 * values cannot hold `/`, `*` or `,`: `<namespace>_<serviceAccount>` there, one per label).
 * Nothing else is hosted; a node may always run workloads as its own identity.
 */
export const WORKLOAD_IDENTITIES_LABEL = "weft:workload-identities";

/** The older form of the grant: namespaces (comma-separated, or `*`), each as `<namespace>/*`. */
export const WORKLOAD_NAMESPACES_LABEL = "weft:workload-namespaces";

// ---------------------------------------------------------------- NATS credentials

/** Agent → controller on Subjects.credentials(nodeId): a fresh user JWT for the node's own nkey. */
export const CredentialsRequest = z.object({ version: z.literal(1) }).strict();
export type CredentialsRequest = z.infer<typeof CredentialsRequest>;

/** The reply: a JWT for the same nkey with the node's permissions and limits, and when it expires. */
export const CredentialsReply = z.union([
  z.object({ ok: z.literal(true), userJwt: z.string().min(1).max(16_384), expiresAt: z.string() }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type CredentialsReply = z.infer<typeof CredentialsReply>;

// ---------------------------------------------------------------- WireGuard key rotation

/** Agent → controller on Subjects.wireguardKey(nodeId): the node's new WireGuard public key. */
export const KeyRotationRequest = z.object({ version: z.literal(1), wireguardPublicKey: wireguardKey }).strict();
export type KeyRotationRequest = z.infer<typeof KeyRotationRequest>;

/** The reply: the key is in the node and peer records (peers switch to it), or why not. */
export const KeyRotationReply = z.union([
  z.object({ ok: z.literal(true), wireguardPublicKey: wireguardKey }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type KeyRotationReply = z.infer<typeof KeyRotationReply>;
