/**
 * The GCP inventory adapter: one project's Compute Engine instances, VPC networks and subnetworks
 * through `@google-cloud/compute`, normalised to the inventory model. See cloud-adapters/README.md, "GCP".
 */
export { GcpInventory, endpointOptions, type GcpAuthClient, type GcpInventoryOptions } from "./inventory.js";
export { classifyGcpError } from "./classify.js";
export { gceState, toInstance as gceToInstance, toNetwork as gceToNetwork } from "./normalise.js";
