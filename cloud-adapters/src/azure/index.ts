/**
 * Azure inventory: one subscription's VMs, network interfaces, public IPs and VNets through
 * @azure/arm-compute and @azure/arm-network, joined into the inventory model. Credentials come
 * from DefaultAzureCredential unless one is passed; tests and the lab point `endpoint` at
 * @weft/cloud-sim's ARM simulator and trust its CA with `caPem`.
 */
export { AzureInventory, type AzureInventoryOptions } from "./inventory.js";
export { classifyAzureError } from "./classify.js";
export { azureState, joinInstances, toNetworks, vnetIdOfSubnet, type ArmLists } from "./normalise.js";
