/**
 * controller/spiffe — the trust domain's SPIFFE authority: its own CA and JWT key in
 * `<stateDir>/spiffe/` (separate from the REST API's CA), the bundle every agent reads, and the
 * service that signs X.509-SVIDs from agents' CSRs and JWT-SVIDs, only for SPIFFE IDs the asking
 * node may hold (its identity and its workloads').
 */
export { TrustDomainAuthority, SpiffeStateError, SPIFFE_DIR } from "./authority.js";
export { publishTrustBundle, sameAuthorities } from "./bundle.js";
export { SvidService, svidIdsOf, SVID_QUEUE, type SvidServiceOptions } from "./service.js";
