/**
 * controller/nats — NATS for the controller: the JWT trust chain (operator, accounts,
 * signing key, revocation list) persisted in the state dir, the agent permission
 * template, the embedded JetStream nats-server, the controller's own connection and
 * buckets, and NatsAccess, which revokes a deleted node's credential on the running
 * server. No connection is anonymous; each agent is confined to its own subjects and
 * read access to the peers bucket and to its own key of weft-node-policies.
 */
export {
  AGENT_CREDENTIAL_LIFETIME_SECONDS,
  AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS,
  Authority,
  type AuthorityOptions,
  type IssueAgentUserOptions,
  type Revocation,
  type ServerConfigFragmentOptions,
} from "./authority.js";
export { authorityPath, loadAuthority, loadOrCreateAuthority } from "./authority-file.js";
export { UserCredentials } from "./credentials.js";
export { AGENT_LIMITS, SYSTEM_USER_INBOX_PREFIX, WEFT_ACCOUNT_NAME, claimsUpdateSubject, type AuthorityKeys } from "./jwts.js";
export { assertUserPublicKey, isUserPublicKey } from "./nkeys.js";
export { readRevocations, revocationsPath, type Revocations } from "./revocations.js";
export {
  NatsAccess,
  pushAccountClaims,
  type ClaimsUpdateAck,
  type NatsAccessOptions,
  type PushAccountClaimsOptions,
  type RevokeAgentResult,
} from "./access.js";
export { agentPermissions, assertNodeId, kvBucketReadSubjects, kvKeyReadSubjects, kvStreamName, type AgentPermissions } from "./permissions.js";
export { findNatsServer, natsServerCandidates, parseNatsServerVersion, MIN_NATS_SERVER, PACKAGED_NATS_SERVER, REPO_NATS_SERVER } from "./binary.js";
export {
  DEFAULT_MAX_FILE_STORE,
  DEFAULT_MAX_MEMORY_STORE,
  serverConfig,
  startEmbeddedNats,
  type EmbeddedNats,
  type EmbeddedNatsOptions,
  type NatsServerExit,
} from "./embedded.js";
export {
  BUCKET_HISTORY,
  BUCKET_LIMITS,
  PEERS_REPUBLISH,
  connectController,
  natsTlsOptions,
  type BucketLimit,
  ensureBuckets,
  type ConnectControllerOptions,
  type EnsureBucketsOptions,
} from "./connect.js";
export {
  AuthorityStateError,
  ClaimsUpdateRejectedError,
  ClaimsUpdateUnavailableError,
  ClockBehindRevocationError,
  InvalidNodeIdError,
  InvalidUserKeyError,
  NatsLayerError,
  NatsServerNotFoundError,
  NatsServerStartError,
  NatsServerVersionError,
} from "./errors.js";
export { silentLogger, type Logger } from "./logger.js";
export { superviseEmbeddedNats, type SupervisedNats } from "./supervisor.js";
