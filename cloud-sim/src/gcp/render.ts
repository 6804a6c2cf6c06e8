/**
 * Renders the shared fleet (SimStore) as Compute Engine v1 resources: the field names and shapes
 * of the discovery document's Instance, NetworkInterface, AccessConfig, Network and Subnetwork
 * schemas (compute.v1.json; the same fields as the SDK's google.cloud.compute.v1 protos).
 *
 * How the generic store maps onto GCE:
 * - SimInstance.id should be the numeric GCE id; a non-numeric id is rendered as a stable hash.
 * - tags are the instance's *labels* (GCE label keys and values are lowercase); `extra.networkTags`
 *   (comma-separated) are the network tags (`tags.items`), `extra.machineType` the machine type,
 *   `extra.status` overrides the rendered status with any raw GCE status (SUSPENDED, REPAIRING…).
 * - Lifecycle: pending → PROVISIONING, running → RUNNING, stopping → STOPPING, stopped →
 *   TERMINATED (what GCE reports for a stopped VM, whose ephemeral external IP is released), and
 *   terminated → deleted: the instance is no longer listed at all.
 * - Subnets are regional: SimSubnet.zone holds the subnet's region (a zone is reduced to its region).
 */
import { createHash } from "node:crypto";
import type { SimInstance, SimNetwork, SimSubnet } from "../store.js";

/** GCE selfLinks always name the public API host, whatever endpoint served them. */
export const API_BASE = "https://www.googleapis.com/compute/v1";

export type GceStatus =
  | "PROVISIONING"
  | "STAGING"
  | "RUNNING"
  | "STOPPING"
  | "STOPPED"
  | "SUSPENDING"
  | "SUSPENDED"
  | "REPAIRING"
  | "TERMINATED"
  | "DEPROVISIONING"
  | "PENDING";

/** "us-central1-a" → "us-central1"; a region is returned unchanged. */
export function regionOf(zoneOrRegion: string): string {
  return zoneOrRegion.replace(/-[a-z]$/, "");
}

/** GCE ids are unsigned 64-bit numbers sent as decimal strings; a non-numeric sim id is hashed. */
export function numericId(id: string): string {
  if (/^\d+$/.test(id)) return id;
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(id, "utf8")) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h.toString();
}

function fingerprint(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value ?? null)).digest().subarray(0, 8).toString("base64");
}

/** RFC 3339 in the Pacific offset GCE uses for creationTimestamp ("2024-05-01T03:20:30.123-07:00"). */
export function gceTimestamp(iso: string): string {
  const t = new Date(iso);
  const shifted = new Date(t.getTime() - 7 * 3_600_000).toISOString();
  return shifted.replace("Z", "-07:00");
}

/** The rendered status; undefined when the instance no longer exists in the API (deleted). */
export function gceStatus(i: SimInstance): GceStatus | undefined {
  if (i.state === "terminated") return undefined;
  const override = i.extra?.status;
  if (override) return override as GceStatus;
  return ({ pending: "PROVISIONING", running: "RUNNING", stopping: "STOPPING", stopped: "TERMINATED" } as const)[i.state];
}

export function zoneOf(i: SimInstance): string {
  return i.zone ?? `${i.region}-a`;
}

export function renderInstance(project: string, i: SimInstance): Record<string, unknown> | undefined {
  const status = gceStatus(i);
  if (!status) return undefined;
  const zone = zoneOf(i);
  const region = regionOf(zone);
  const id = numericId(i.id);
  const machineType = i.extra?.machineType ?? "e2-medium";
  const networkTags = (i.extra?.networkTags ?? "").split(",").map((t) => t.trim()).filter(Boolean);
  // A stopped VM keeps its access config but releases its ephemeral external address.
  const released = status === "TERMINATED" || status === "STOPPED";
  const accessConfigs = i.publicIp
    ? [{ kind: "compute#accessConfig", type: "ONE_TO_ONE_NAT", name: "External NAT", networkTier: "PREMIUM", ...(released ? {} : { natIP: i.publicIp }) }]
    : [];
  const nic: Record<string, unknown> = {
    kind: "compute#networkInterface",
    network: `${API_BASE}/projects/${project}/global/networks/${i.network}`,
    networkIP: i.privateIp,
    name: "nic0",
    accessConfigs,
    fingerprint: fingerprint([i.network, i.subnet, i.privateIp, i.publicIp]),
    stackType: "IPV4_ONLY",
  };
  if (i.subnet) nic.subnetwork = `${API_BASE}/projects/${project}/regions/${region}/subnetworks/${i.subnet}`;
  const selfLink = `${API_BASE}/projects/${project}/zones/${zone}/instances/${i.name}`;
  return {
    kind: "compute#instance",
    id,
    creationTimestamp: gceTimestamp(i.launchedAt),
    name: i.name,
    tags: { items: networkTags, fingerprint: fingerprint(networkTags) },
    machineType: `${API_BASE}/projects/${project}/zones/${zone}/machineTypes/${machineType}`,
    status,
    zone: `${API_BASE}/projects/${project}/zones/${zone}`,
    canIpForward: false,
    networkInterfaces: [nic],
    disks: [],
    metadata: { kind: "compute#metadata", fingerprint: fingerprint([]) },
    selfLink,
    scheduling: { onHostMaintenance: "MIGRATE", automaticRestart: true, preemptible: false, provisioningModel: "STANDARD" },
    cpuPlatform: status === "RUNNING" ? "Intel Broadwell" : "Unknown CPU Platform",
    labels: { ...i.tags },
    labelFingerprint: fingerprint(i.tags),
    startRestricted: false,
    deletionProtection: false,
    fingerprint: fingerprint(i),
    lastStartTimestamp: gceTimestamp(i.launchedAt),
  };
}

export function renderNetwork(project: string, n: SimNetwork): Record<string, unknown> {
  return {
    kind: "compute#network",
    id: numericId(n.id),
    creationTimestamp: gceTimestamp("2024-01-01T00:00:00.000Z"),
    name: n.name,
    selfLink: `${API_BASE}/projects/${project}/global/networks/${n.name}`,
    selfLinkWithId: `${API_BASE}/projects/${project}/global/networks/${numericId(n.id)}`,
    autoCreateSubnetworks: false,
    subnetworks: n.subnets.map((s) => subnetLink(project, n, s)),
    routingConfig: { routingMode: "REGIONAL" },
    mtu: 1460,
    networkFirewallPolicyEnforcementOrder: "AFTER_CLASSIC_FIREWALL",
  };
}

export function subnetRegion(n: SimNetwork, s: SimSubnet): string {
  return regionOf(s.zone ?? n.region);
}

export function subnetName(s: SimSubnet): string {
  return s.name ?? s.id;
}

function subnetLink(project: string, n: SimNetwork, s: SimSubnet): string {
  return `${API_BASE}/projects/${project}/regions/${subnetRegion(n, s)}/subnetworks/${subnetName(s)}`;
}

/** The first usable address of a CIDR: GCE's gatewayAddress. */
function gatewayOf(cidr: string): string {
  const [base = "0.0.0.0"] = cidr.split("/");
  const o = base.split(".").map(Number);
  o[3] = (o[3] ?? 0) + 1;
  return o.join(".");
}

export function renderSubnetwork(project: string, n: SimNetwork, s: SimSubnet): Record<string, unknown> {
  const region = subnetRegion(n, s);
  return {
    kind: "compute#subnetwork",
    id: numericId(`${n.id}/${s.id}`),
    creationTimestamp: gceTimestamp("2024-01-01T00:00:00.000Z"),
    name: subnetName(s),
    network: `${API_BASE}/projects/${project}/global/networks/${n.name}`,
    ipCidrRange: s.cidr,
    gatewayAddress: gatewayOf(s.cidr),
    region: `${API_BASE}/projects/${project}/regions/${region}`,
    selfLink: subnetLink(project, n, s),
    privateIpGoogleAccess: false,
    fingerprint: fingerprint(s),
    purpose: "PRIVATE",
    stackType: "IPV4_ONLY",
  };
}
