/**
 * Compute Engine resources → the inventory model. Names come from resource URLs (zone, network,
 * subnetwork), the region from the zone, the tags from the instance's labels (not its network
 * tags), the addresses from every interface.
 *
 * Status: GCE reports a *stopped* VM as TERMINATED (it can be started again), so TERMINATED,
 * STOPPED and SUSPENDED are all "stopped"; a deleted instance is simply no longer listed, and only
 * its absence from a complete snapshot says it is gone.
 */
import type { protos } from "@google-cloud/compute";
import type { Instance, InstanceState, Network, Subnet } from "../model.js";

type GceInstance = protos.google.cloud.compute.v1.IInstance;
type GceNetwork = protos.google.cloud.compute.v1.INetwork;
type GceSubnetwork = protos.google.cloud.compute.v1.ISubnetwork;

/** The last path segment of a resource URL or partial URL ("…/zones/us-central1-a" → "us-central1-a"). */
export function lastSegment(url: string | null | undefined): string | undefined {
  if (!url) return undefined;
  const seg = url.replace(/\/+$/, "").split("/").pop();
  return seg || undefined;
}

/** "us-central1-a" → "us-central1". */
export function regionOfZone(zone: string): string {
  return zone.replace(/-[a-z]$/, "");
}

const STATES: Record<string, InstanceState> = {
  PROVISIONING: "pending",
  STAGING: "pending",
  PENDING: "pending",
  RUNNING: "running",
  STOPPING: "stopping",
  SUSPENDING: "stopping",
  DEPROVISIONING: "stopping",
  STOPPED: "stopped",
  SUSPENDED: "stopped",
  TERMINATED: "stopped",
};

export function gceState(status: string | null | undefined): InstanceState {
  return STATES[status ?? ""] ?? "unknown";
}

/** One GCE instance as the model has it; `scope` ("zones/x") is the aggregated list's key. */
export function toInstance(project: string, scope: string, i: GceInstance): Instance {
  const zone = lastSegment(i.zone) ?? scope.replace(/^zones\//, "");
  const nics = i.networkInterfaces ?? [];
  const nic0 = nics[0];
  return {
    provider: "gcp",
    account: project,
    region: regionOfZone(zone),
    zone,
    network: lastSegment(nic0?.network) ?? "",
    ...(lastSegment(nic0?.subnetwork) ? { subnet: lastSegment(nic0?.subnetwork) } : {}),
    id: String(i.id ?? ""),
    name: i.name ?? "",
    privateIps: nics.map((n) => n.networkIP).filter((ip): ip is string => !!ip),
    publicIps: nics.flatMap((n) => (n.accessConfigs ?? []).map((a) => a.natIP)).filter((ip): ip is string => !!ip),
    tags: { ...(i.labels ?? {}) },
    state: gceState(i.status),
  };
}

export function toSubnet(s: GceSubnetwork): Subnet | undefined {
  const name = s.name ?? lastSegment(s.selfLink);
  const region = lastSegment(s.region);
  if (!name || !s.ipCidrRange) return undefined;
  // Subnet names are unique per region, not per project: the id carries the region.
  return { id: region ? `regions/${region}/subnetworks/${name}` : name, name, cidr: s.ipCidrRange };
}

/**
 * A VPC network with its subnets. Its id is the network's name (what an instance's `network`
 * holds); its cidrs are its subnets' primary ranges (and a legacy network's IPv4Range).
 */
export function toNetwork(project: string, n: GceNetwork, subnets: GceSubnetwork[]): Network {
  const name = n.name ?? lastSegment(n.selfLink) ?? String(n.id ?? "");
  const mine = subnets.filter((s) => lastSegment(s.network) === name);
  const subs = mine.map(toSubnet).filter((s): s is Subnet => s !== undefined);
  const cidrs = [...new Set([...(n.IPv4Range ? [n.IPv4Range] : []), ...subs.map((s) => s.cidr)])];
  return { provider: "gcp", account: project, id: name, name, cidrs, subnets: subs };
}
