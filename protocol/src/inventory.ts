/**
 * Cloud inventory on the wire: the records the controller keeps in the `weft-inventory` bucket
 * (instances, networks, one status per account) and what `GET /v1/inventory` and
 * `POST /v1/inventory/sync` answer. The instance and network fields are the cloud adapters' model
 * (`@weft/cloud`), plus what the controller adds: when a sync last listed it and the node bound to it.
 */
import { z } from "zod";
import { SiteRemap, nodeId } from "./messages.js";
import { CloudProvider } from "./provider.js";

/** Where an instance or network is listed. */
const provider = CloudProvider;

export const InventoryInstanceState = z.enum(["pending", "running", "stopping", "stopped", "terminated", "unknown"]);
export type InventoryInstanceState = z.infer<typeof InventoryInstanceState>;

/** An instance as a cloud adapter lists it: the model of DESIGN.md "Cloud inventory" (@weft/cloud's Instance). */
export const CloudInstance = z.object({
  provider,
  /** AWS account id, Azure subscription id, GCP project id, on-prem site name. */
  account: z.string(),
  /** AWS region, Azure location, GCP region (from the zone), on-prem site. */
  region: z.string(),
  zone: z.string().optional(),
  /** VPC id, VNet resource id, GCE network name, on-prem network name. */
  network: z.string(),
  subnet: z.string().optional(),
  /** The cloud's own id (i-…, the Azure vmId, the numeric GCE id, the on-prem host name). */
  id: z.string(),
  name: z.string(),
  privateIps: z.array(z.string()),
  publicIps: z.array(z.string()),
  tags: z.record(z.string(), z.string()),
  state: InventoryInstanceState,
});
export type CloudInstance = z.infer<typeof CloudInstance>;

/** One cloud instance as the controller stores it (key `i.<provider>.<account>.<id>`). */
export const InventoryInstance = CloudInstance.extend({
  /** The last sync that listed the instance. */
  seenAt: z.string(),
  /** Set when a complete sync no longer listed it (kept while a node is bound to it, as the evidence). */
  absentSince: z.string().optional(),
  /** The node enrolled on this instance (written at enrollment by the join checks). */
  boundNode: nodeId.optional(),
  boundAt: z.string().optional(),
});
export type InventoryInstance = z.infer<typeof InventoryInstance>;

export const InventorySubnet = z.object({ id: z.string(), cidr: z.string(), zone: z.string().optional(), name: z.string().optional() });
export type InventorySubnet = z.infer<typeof InventorySubnet>;

/** A VPC / VNet / GCE network / on-prem LAN as a cloud adapter lists it (@weft/cloud's Network). */
export const CloudNetwork = z.object({
  provider,
  account: z.string(),
  region: z.string().optional(),
  id: z.string(),
  name: z.string().optional(),
  /** The network's address space (VPC CIDR blocks, VNet address prefixes, the subnets' ranges on GCE). */
  cidrs: z.array(z.string()),
  subnets: z.array(InventorySubnet),
});
export type CloudNetwork = z.infer<typeof CloudNetwork>;

/** One network as the controller stores it (key `n.<provider>.<account>.<id>`). */
export const InventoryNetwork = CloudNetwork.extend({ seenAt: z.string() });
export type InventoryNetwork = z.infer<typeof InventoryNetwork>;

export const InventoryIssueRecord = z.object({ scope: z.string(), code: z.string(), message: z.string() });
export type InventoryIssueRecord = z.infer<typeof InventoryIssueRecord>;

/** A bound node the inventory wants gone, and why. */
export const InventoryRemoval = z.object({
  nodeId,
  /** The node's name, when known. */
  name: z.string().optional(),
  /** The instance it is bound to. */
  instance: z.string(),
  /** `terminated`: the cloud says so; `absent`: a complete listing no longer has it. */
  reason: z.enum(["terminated", "absent"]),
  /** What the decision rests on, for the log and the operator. */
  evidence: z.string(),
});
export type InventoryRemoval = z.infer<typeof InventoryRemoval>;

/** A bound node whose instance is stopped: reported, never removed. */
export const InventoryStoppedNode = z.object({ nodeId, instance: z.string(), state: InventoryInstanceState });

/** One account's last sync (key `s.<provider>.<account>`). */
export const InventoryAccountStatus = z.object({
  provider,
  account: z.string(),
  /** When the last sync of this account ended. */
  syncedAt: z.string(),
  /** The last sync whose fetch succeeded (complete or not). */
  lastSuccessAt: z.string().optional(),
  /** "ok": complete listing; "partial": listed with issues (nothing removed); "failed": the fetch threw (nothing touched). */
  result: z.enum(["ok", "partial", "failed"]),
  complete: z.boolean(),
  /** Why the fetch failed (auth, exception): the stored instances were left as they were. */
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  issues: z.array(InventoryIssueRecord),
  counts: z.object({ instances: z.number().int(), networks: z.number().int(), bound: z.number().int() }),
  /** Instances listed by the last complete, non-suspicious sync (the baseline for "suddenly empty"). */
  lastCompleteInstances: z.number().int().optional(),
  /** Records written by the last sync: added, changed, gone (unbound records of instances no longer listed). */
  changes: z.object({ added: z.number().int(), updated: z.number().int(), deleted: z.number().int() }),
  /** Nodes removed by the last sync. */
  removed: z.array(InventoryRemoval),
  /** Nodes that should go but were held back (share limit, suspicious listing); retried next cycle. */
  heldBack: z.array(InventoryRemoval),
  /** Why removals were held back, when they were. */
  heldBackReason: z.string().optional(),
  /** Bound nodes whose instance is stopped (not removed). */
  stopped: z.array(InventoryStoppedNode),
  /** Bound nodes whose labels or identity the last sync changed. */
  relabelled: z.array(nodeId),
});
export type InventoryAccountStatus = z.infer<typeof InventoryAccountStatus>;

/** Routes of one site learned from its networks' address space. */
export const InventorySiteRoute = z.object({
  /** The site of the nodes bound to instances in these networks, else `<provider>:<network id>`. */
  site: z.string(),
  /** True when no bound node tells the site (the network id stands in for it). */
  inferred: z.boolean(),
  cidrs: z.array(z.string()),
  networks: z.array(z.string()),
  /** CIDRs of this site that overlap another network's: never merged, never routed silently. */
  conflicts: z.array(z.string()),
  /** The node advertising this site's routes to the other sites (a `weft:gateway` node of the site). */
  gateway: z.object({ nodeId, name: z.string() }).optional(),
  /** The CIDRs the gateway advertises: `cidrs` less the withheld ones. Empty without a gateway. */
  advertised: z.array(z.string()),
  /** CIDRs not advertised, and why (overlap with another network or with the overlay's ranges). */
  withheld: z.array(z.object({ cidr: z.string(), reason: z.string() })),
  /**
   * CIDRs that overlap another site's and are advertised under a remapped prefix from the
   * controller's pool (`inventory.remapPool`): other sites reach `cidr` at `remapped`, the
   * gateway translates 1:1 both ways. The remapped prefixes are in `advertised`.
   */
  remaps: z.array(SiteRemap).optional(),
});
export type InventorySiteRoute = z.infer<typeof InventorySiteRoute>;

/** Two networks whose address spaces overlap. */
export const InventoryOverlap = z.object({
  a: z.object({ provider, account: z.string(), network: z.string(), site: z.string(), cidr: z.string() }),
  b: z.object({ provider, account: z.string(), network: z.string(), site: z.string(), cidr: z.string() }),
  sameSite: z.boolean(),
});
export type InventoryOverlap = z.infer<typeof InventoryOverlap>;

/** `GET /v1/inventory`. */
export const InventoryView = z.object({
  instances: z.array(InventoryInstance),
  networks: z.array(InventoryNetwork),
  statuses: z.array(InventoryAccountStatus),
  siteRoutes: z.array(InventorySiteRoute),
  overlaps: z.array(InventoryOverlap),
});
export type InventoryView = z.infer<typeof InventoryView>;

/** `POST /v1/inventory/sync` body: no options yet (every configured account is synced). */
export const InventorySyncRequest = z.object({}).strict();
export type InventorySyncRequest = z.infer<typeof InventorySyncRequest>;

/** `POST /v1/inventory/sync`: the status each configured account ended the sync with. */
export const InventorySyncResult = z.object({
  startedAt: z.string(),
  finishedAt: z.string(),
  accounts: z.array(InventoryAccountStatus),
});
export type InventorySyncResult = z.infer<typeof InventorySyncResult>;
