/**
 * @weft/cloud — cloud inventory adapters (AWS, Azure, GCP, on-prem file) behind one interface,
 * using the real SDKs. See cloud-adapters/README.md.
 */
export * from "./model.js";
export * from "./errors.js";
export { withRetry, type RetryOptions } from "./retry.js";
export { AwsInventory, type AwsInventoryOptions } from "./aws/index.js";
export { AzureInventory, classifyAzureError, type AzureInventoryOptions } from "./azure/index.js";
export { GcpInventory, classifyGcpError, type GcpInventoryOptions, type GcpAuthClient } from "./gcp/index.js";
export { OnpremInventory, OnpremFile, readOnpremFile, onpremSnapshot } from "./onprem/index.js";
