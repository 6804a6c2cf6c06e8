/**
 * The AWS inventory adapter: EC2 instances, VPCs and subnets across an account's regions through
 * `@aws-sdk/client-ec2`, normalised to the inventory model. See cloud-adapters/README.md, "AWS".
 */
export { AwsInventory, type AwsInventoryOptions } from "./inventory.js";
export { classifyEc2Error } from "./classify.js";
export { ec2State, normaliseInstance, normaliseNetworks, tagRecord } from "./normalise.js";
