/**
 * The one model every cloud adapter produces (DESIGN.md "Cloud inventory"): instances and
 * networks, whatever the provider calls them. Adapters normalise; nothing downstream knows which
 * SDK a record came from.
 */
import { CloudInstance, CloudNetwork, CloudProvider, InventoryInstanceState, InventorySubnet } from "@weft/protocol";
import { z } from "zod";

/** Lifecycle, normalised: EC2 instance states, Azure power states, GCE statuses, on-prem "running". */
export const InstanceState = InventoryInstanceState;
export type InstanceState = z.infer<typeof InstanceState>;

/** The wire schema shared with the controller's stored records (protocol/src/inventory.ts). */
export const Instance = CloudInstance;
export type Instance = z.infer<typeof Instance>;

export const Subnet = InventorySubnet;
export type Subnet = z.infer<typeof Subnet>;

export const Network = CloudNetwork;
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
  provider: CloudProvider,
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
  readonly provider: CloudProvider;
  readonly account: string;
  /** Throws InventoryAuthError when the credentials are refused (not retried forever). */
  fetch(signal?: AbortSignal): Promise<InventorySnapshot>;
}
