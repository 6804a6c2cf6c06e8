/**
 * Cloud inventory in the controller: the stored instances, networks and per-account sync status
 * (store.ts), the periodic and on-demand sync through the @weft/cloud adapters (sync.ts), which
 * applies each listing in steps (apply.ts) decided by pure functions (listing.ts), labels and
 * identity from tags (tag-labels.ts), auto-revoke of nodes whose instances are gone (revoke.ts),
 * site routes and overlapping CIDRs (routes.ts), their gateways (gateways.ts), the view and plan
 * made of them (plan.ts) and its publication (advertise.ts). See controller/README.md, "Inventory".
 */
export {
  InventoryStore,
  StoredInstance,
  StoredNetwork,
  AccountStatus,
  instanceKey,
  networkKey,
  statusKey,
  keyOfInstance,
  keyOfNetwork,
  kvToken,
} from "./store.js";
export { InventorySync, type InventorySyncOptions } from "./sync.js";
export { InventoryPlanner, type InventoryPlan, type InventoryPlannerOptions } from "./plan.js";
export { InventoryConfig, InventoryAccountConfig, accountLabel, type InventoryConfigInput } from "./config.js";
export { defaultAdapterFactory, type AdapterFactory } from "./adapters.js";
export { decideRemovals, removalLimit, type Binding, type RemovalDecision } from "./revoke.js";
export { cloudLabels, desiredNode, identityTags, CLOUD_LABEL_PREFIX, CLOUD_TAG_PREFIX } from "./tag-labels.js";
export { siteRoutes, describeOverlap } from "./routes.js";
