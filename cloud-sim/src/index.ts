/**
 * @weft/cloud-sim — local simulators of the EC2, ARM and GCE APIs (and their instance metadata
 * services) that the unmodified SDKs talk to, with paging, injectable faults and an admin
 * interface. See cloud-sim/README.md.
 */
export { SimStore, SimError, type SimInstance, type SimNetwork, type SimSubnet, type SimState } from "./store.js";
export { Faults, type Fault, type FaultKind } from "./faults.js";
export { SimAdmin, handleAdmin, readBody, sendJson } from "./admin.js";
export { startAwsSim, type AwsSim, type AwsSimOptions } from "./aws/index.js";
export { startAzureSim, caFetch, type AzureSim, type AzureSimOptions } from "./azure/index.js";
export { serveAdminSocket, unixFetch } from "./unix-admin.js";
export { startGcpSim, gceNumericId, gceRegionOf, renderGceInstance, type GcpSim, type GcpSimOptions, type GcpFault } from "./gcp/index.js";
export { SIM_TRUST_FILES, writeSimTrust, type SimIdentity, type SimTrustPaths } from "./trust.js";
export { createAwsIdentitySigner, type AwsIdentitySigner } from "./aws/index.js";
export { createAzureAttestedSigner, azureTimestamp, type AzureAttestedSigner } from "./azure/index.js";
export { createGcpIdentitySigner, type GcpIdentitySigner, type GceTokenClaims } from "./gcp/index.js";
export { selfSignedRsa, issuedRsa, signPkcs7, base64Lines, type SigningCert } from "./signing.js";
