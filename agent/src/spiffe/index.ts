/**
 * agent/spiffe — the SPIFFE Workload API on this host (gRPC over a unix socket), its caller
 * attestation (peer credentials and network namespace), the X.509-SVIDs of this host's identities
 * (keys made here, CSRs signed by the controller, rotated at half-life), JWT-SVIDs and the trust
 * bundle. See service.ts for how they are wired.
 */
export { SpiffeService, servedIds, nodeSpiffeId, type SpiffeOptions } from "./service.js";
export { attest, callerKey, type Caller, type AttestContext } from "./attest.js";
export { peerCredentials, ownNetns, netnsAt, type PeerCredentials, type NamespaceId } from "./peercred.js";
export { X509SvidSource, renewAt, type X509Svid } from "./svids.js";
export { TrustBundleWatch, type BundleSource } from "./bundle-watch.js";
export { JwtSvids, validateJwtSvid, JwtSvidInvalidError } from "./jwt.js";
export { WorkloadApi, toStruct } from "./workload-api.js";
export { WORKLOAD_PROTO, workloadApiService } from "./proto.js";
