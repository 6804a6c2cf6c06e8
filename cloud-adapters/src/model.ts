/**
 * The one model every cloud adapter produces (DESIGN.md "Cloud inventory"): instances and
 * networks, whatever the provider calls them. Adapters normalise; nothing downstream knows which
 * SDK a record came from.
 */
import { z } from "zod";

export const Provider = z.enum(["aws", "azure", "gcp", "onprem"]);
export type Provider = z.infer<typeof Provider>;

/** Lifecycle, normalised: EC2 instance states, Azure power states, GCE statuses, on-prem "running". */
export const InstanceState = z.enum(["pending", "running", "stopping", "stopped", "terminated", "unknown"]);
export type InstanceState = z.infer<typeof InstanceState>;

export const Instance = z.object({
  provider: Provider,
  /** AWS account id, Azure subscription id, GCP project id, on-prem site name. */
  account: z.string(),
  /** AWS region, Azure location, GCP region (from the zone), on-prem site. */
  region: z.string(),
  zone: z.string().optional(),
  /** VPC id, VNet resource id, GCE network name, on-prem network name. */
  network: z.string(),
  subnet: z.string().optional(),
  /** The cloud's own id: i-0abc…, the VM's vmId (Azure), the numeric GCE id, the on-prem host name. */
  id: z.string(),
  name: z.string(),
  privateIps: z.array(z.string()),
  publicIps: z.array(z.string()),
  tags: z.record(z.string(), z.string()),
  state: InstanceState,
});
export type Instance = z.infer<typeof Instance>;

export const Subnet = z.object({ id: z.string(), cidr: z.string(), zone: z.string().optional(), name: z.string().optional() });
export type Subnet = z.infer<typeof Subnet>;

export const Network = z.object({
  provider: Provider,
  account: z.string(),
  region: z.string().optional(),
  id: z.string(),
  name: z.string().optional(),
  /** The network's address space (VPC CIDR blocks, VNet address prefixes, the subnets' ranges on GCE). */
  cidrs: z.array(z.string()),
  subnets: z.array(Subnet),
});
export type Network = z.infer<typeof Network>;

/** What went wrong in part of a fetch: a region, a page, a resource type. */
export const InventoryIssue = z.object({
  scope: z.string(),
  code: z.string(),
  message: z.string(),
});
export type InventoryIssue = z.infer<typeof InventoryIssue>;

/**
 * One fetch of one account. `complete` is true only when every call succeeded and every page was
 * read: a consumer may treat an instance's absence as evidence only in a complete snapshot.
 */
export const InventorySnapshot = z.object({
  provider: Provider,
  account: z.string(),
  fetchedAt: z.string(),
  complete: z.boolean(),
  instances: z.array(Instance),
  networks: z.array(Network),
  issues: z.array(InventoryIssue),
});
export type InventorySnapshot = z.infer<typeof InventorySnapshot>;

/** A cloud account behind its SDK. fetch() never throws for a partial failure: it reports it. */
export interface InventoryAdapter {
  readonly provider: Provider;
  readonly account: string;
  /** Throws InventoryAuthError when the credentials are refused (not retried forever). */
  fetch(signal?: AbortSignal): Promise<InventorySnapshot>;
}
