/**
 * Every bucket the controller keeps, opened once and handed out as typed stores. Each store is
 * given to the one service that owns its bucket (see the bucket table in controller/README.md);
 * other services read through that owner, or watch the bucket for changes.
 */
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, EnrollmentPolicy, NodePathsRecord, NodePolicyChunk, NodePolicyRecord, NodeRecord, NodeServicesRecord, PeerRecord, Policy, ServiceRecord, TrustBundle } from "@weft/protocol";
import { AttestationMark } from "../attest/marks.js";
import { NonceRecord } from "../attest/nonces.js";
import { IdentityEntry } from "../identity/allocator.js";
import { InventoryStore } from "../inventory/store.js";
import { Claim } from "../ipam/claims.js";
import { StoredJoinKey } from "../keys/joinkeys.js";
import { StoredLiveness } from "../nodes/liveness-store.js";
import { StoredRevocation } from "../revocations/shared.js";
import { RecordStore, type KvObserver } from "./kv.js";

export interface Stores {
  /** weft-nodes: NodeRegistry. */
  nodes: RecordStore<typeof NodeRecord>;
  /** weft-peers: NodeRegistry (derived from the node records). */
  peers: RecordStore<typeof PeerRecord>;
  /** weft-ipam: Claims (the address and prefix allocators claim through it). */
  ipam: RecordStore<typeof Claim>;
  /** weft-keys: JoinKeys. */
  keys: RecordStore<typeof StoredJoinKey>;
  /** weft-identities: IdentityAllocator. */
  identities: RecordStore<typeof IdentityEntry>;
  /** weft-policies: PolicyService. */
  policies: RecordStore<typeof Policy>;
  /** weft-node-policies: NodePolicyPublisher. */
  nodePolicies: RecordStore<typeof NodePolicyRecord>;
  /** The same bucket: chunks `<nodeId>.<i>` of compiled policies too large for one record. */
  nodePolicyChunks: RecordStore<typeof NodePolicyChunk>;
  /** weft-enroll-policies: EnrollmentPolicies. */
  enrollPolicies: RecordStore<typeof EnrollmentPolicy>;
  /** weft-inventory: InventoryStore (the sync writes it, enrollment binds instances through it). */
  inventory: InventoryStore;
  /** weft-node-paths: PathCoordinator. */
  nodePaths: RecordStore<typeof NodePathsRecord>;
  /** weft-enroll-nonces: EnrollNonces (Azure attested-document nonces). */
  enrollNonces: RecordStore<typeof NonceRecord>;
  /** weft-attestations: AttestationMarks (signed documents already used). */
  attestations: RecordStore<typeof AttestationMark>;
  /** weft-services: ServiceCatalog. */
  services: RecordStore<typeof ServiceRecord>;
  /** weft-node-services: NodeServicesPublisher. */
  nodeServices: RecordStore<typeof NodeServicesRecord>;
  /** weft-trust-bundle: publishTrustBundle (spiffe/bundle.ts). */
  trustBundle: RecordStore<typeof TrustBundle>;
  /** weft-liveness: LivenessRecorder (the leader). The leader lease (weft-leader) is LeaderElection's own. */
  liveness: RecordStore<typeof StoredLiveness>;
  /** weft-revocations: SharedRevocations (revocations/shared.ts; any controller records, the leader prunes). */
  revocations: RecordStore<typeof StoredRevocation>;
}

/**
 * Longest one JetStream request waits. Short, so a request sent just before a NATS server died
 * (or while a cluster elects a stream leader) is retried well inside STORE_RETRY_MS.
 */
export const STORE_REQUEST_TIMEOUT_MS = 2000;

/** Opens each bucket once (they must exist: ensureBuckets); `observe` hears of every operation (metrics). */
export async function openStores(nc: NatsConnection, observe?: KvObserver): Promise<Stores> {
  const o = observe ? { observe } : {};
  const kvm = new Kvm(jetstream(nc, { timeout: STORE_REQUEST_TIMEOUT_MS }));
  const [nodes, peers, ipam, keys, identities, policies, nodePolicies, enrollPolicies, inventory, enrollNonces, attestations, services, nodeServices, trustBundle, nodePaths, liveness, revocations] = await Promise.all([
    kvm.open(Buckets.nodes),
    kvm.open(Buckets.peers),
    kvm.open(Buckets.ipam),
    kvm.open(Buckets.keys),
    kvm.open(Buckets.identities),
    kvm.open(Buckets.policies),
    kvm.open(Buckets.nodePolicies),
    kvm.open(Buckets.enrollPolicies),
    kvm.open(Buckets.inventory),
    kvm.open(Buckets.enrollNonces),
    kvm.open(Buckets.attestations),
    kvm.open(Buckets.services),
    kvm.open(Buckets.nodeServices),
    kvm.open(Buckets.trustBundle),
    kvm.open(Buckets.nodePaths),
    kvm.open(Buckets.liveness),
    kvm.open(Buckets.revocations),
  ]);
  return {
    nodes: new RecordStore(nodes, NodeRecord, Buckets.nodes, o),
    peers: new RecordStore(peers, PeerRecord, Buckets.peers, o),
    ipam: new RecordStore(ipam, Claim, Buckets.ipam, o),
    keys: new RecordStore(keys, StoredJoinKey, Buckets.keys, o),
    identities: new RecordStore(identities, IdentityEntry, Buckets.identities, o),
    policies: new RecordStore(policies, Policy, Buckets.policies, o),
    nodePolicies: new RecordStore(nodePolicies, NodePolicyRecord, Buckets.nodePolicies, o),
    nodePolicyChunks: new RecordStore(nodePolicies, NodePolicyChunk, Buckets.nodePolicies, o),
    enrollPolicies: new RecordStore(enrollPolicies, EnrollmentPolicy, Buckets.enrollPolicies, o),
    inventory: new InventoryStore(inventory, o),
    enrollNonces: new RecordStore(enrollNonces, NonceRecord, Buckets.enrollNonces, o),
    attestations: new RecordStore(attestations, AttestationMark, Buckets.attestations, o),
    services: new RecordStore(services, ServiceRecord, Buckets.services, o),
    nodeServices: new RecordStore(nodeServices, NodeServicesRecord, Buckets.nodeServices, o),
    trustBundle: new RecordStore(trustBundle, TrustBundle, Buckets.trustBundle, o),
    nodePaths: new RecordStore(nodePaths, NodePathsRecord, Buckets.nodePaths, o),
    liveness: new RecordStore(liveness, StoredLiveness, Buckets.liveness, o),
    revocations: new RecordStore(revocations, StoredRevocation, Buckets.revocations, o),
  };
}
