/**
 * EC2 shapes → the inventory model: instance state, tags, addresses, placement; VPCs and subnets
 * → networks. Pure functions over the SDK's output types.
 */
import type { Instance as Ec2Instance, Subnet as Ec2Subnet, Tag, Vpc } from "@aws-sdk/client-ec2";
import type { Instance, InstanceState, Network } from "../model.js";

/**
 * EC2 state → model state. `shutting-down` is on its way to `terminated` but the instance still
 * exists: it maps to "stopping" so nothing is revoked before EC2 reports `terminated`.
 */
const STATES: Record<string, InstanceState> = {
  pending: "pending",
  running: "running",
  "shutting-down": "stopping",
  stopping: "stopping",
  stopped: "stopped",
  terminated: "terminated",
};
/** The same by code (low byte; the high byte is internal to EC2), for a missing or unknown name. */
const CODES: Record<number, InstanceState> = { 0: "pending", 16: "running", 32: "stopping", 48: "terminated", 64: "stopping", 80: "stopped" };

export function ec2State(state: { Name?: string; Code?: number } | undefined): InstanceState {
  const byName = state?.Name === undefined ? undefined : STATES[state.Name];
  if (byName) return byName;
  return state?.Code === undefined ? "unknown" : (CODES[state.Code & 0xff] ?? "unknown");
}

export function tagRecord(tags: Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key !== undefined) out[t.Key] = t.Value ?? "";
  return out;
}

function pushUnique(list: string[], v: string | undefined): void {
  if (v && !list.includes(v)) list.push(v);
}

/** Primary address first, then every other address of every interface. */
function addresses(i: Ec2Instance): { privateIps: string[]; publicIps: string[] } {
  const privateIps: string[] = [];
  const publicIps: string[] = [];
  pushUnique(privateIps, i.PrivateIpAddress);
  pushUnique(publicIps, i.PublicIpAddress);
  const enis = [...(i.NetworkInterfaces ?? [])].sort((a, b) => (a.Attachment?.DeviceIndex ?? 0) - (b.Attachment?.DeviceIndex ?? 0));
  for (const eni of enis) {
    pushUnique(privateIps, eni.PrivateIpAddress);
    pushUnique(publicIps, eni.Association?.PublicIp);
    for (const a of eni.PrivateIpAddresses ?? []) {
      pushUnique(privateIps, a.PrivateIpAddress);
      pushUnique(publicIps, a.Association?.PublicIp);
    }
  }
  return { privateIps, publicIps };
}

/**
 * One EC2 instance in the model. A terminated instance has no VPC on EC2: `network` is then "".
 * Returns undefined for a record without an id (never seen from EC2).
 */
export function normaliseInstance(i: Ec2Instance, account: string, region: string): Instance | undefined {
  if (!i.InstanceId) return undefined;
  const tags = tagRecord(i.Tags);
  return {
    provider: "aws",
    account,
    region,
    ...(i.Placement?.AvailabilityZone ? { zone: i.Placement.AvailabilityZone } : {}),
    network: i.VpcId ?? "",
    ...(i.SubnetId ? { subnet: i.SubnetId } : {}),
    id: i.InstanceId,
    name: tags.Name || i.InstanceId,
    ...addresses(i),
    tags,
    state: ec2State(i.State),
  };
}

/** VPCs with their associated CIDR blocks (primary first) and their subnets. */
export function normaliseNetworks(vpcs: Vpc[], subnets: Ec2Subnet[], account: string, region: string): Network[] {
  const out: Network[] = [];
  for (const v of vpcs) {
    if (!v.VpcId) continue;
    const cidrs: string[] = [];
    pushUnique(cidrs, v.CidrBlock);
    for (const a of v.CidrBlockAssociationSet ?? []) {
      const state = a.CidrBlockState?.State;
      if (state === undefined || state === "associated" || state === "associating") pushUnique(cidrs, a.CidrBlock);
    }
    const name = tagRecord(v.Tags).Name;
    out.push({
      provider: "aws",
      account,
      region,
      id: v.VpcId,
      ...(name ? { name } : {}),
      cidrs,
      subnets: subnets
        .filter((s) => s.VpcId === v.VpcId && s.SubnetId && s.CidrBlock)
        .map((s) => {
          const subnetName = tagRecord(s.Tags).Name;
          return { id: s.SubnetId!, cidr: s.CidrBlock!, ...(s.AvailabilityZone ? { zone: s.AvailabilityZone } : {}), ...(subnetName ? { name: subnetName } : {}) };
        }),
    });
  }
  return out;
}
