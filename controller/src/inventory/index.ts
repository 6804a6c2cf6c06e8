/**
 * Cloud inventory in the controller: the stored instances, networks and per-account sync status
 * (store.ts), the periodic and on-demand sync through the @weft/cloud adapters (sync.ts), labels
 * and identity from tags (labels.ts), auto-revoke of nodes whose instances are gone (revoke.ts),
 * and site routes and overlapping CIDRs (routes.ts). See controller/README.md, "Inventory".
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
export { InventoryConfig, InventoryAccountConfig, accountLabel, type InventoryConfigInput } from "./config.js";
export { defaultAdapterFactory, type AdapterFactory } from "./adapters.js";
export { decideRemovals, removalLimit, type Binding, type RemovalDecision } from "./revoke.js";
export { cloudLabels, desiredNode, identityTags, CLOUD_LABEL_PREFIX, CLOUD_TAG_PREFIX } from "./labels.js";
export { siteRoutes, describeOverlap } from "./routes.js";
