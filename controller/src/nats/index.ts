/**
 * controller/nats — NATS for the controller: the JWT trust chain (operator, accounts,
 * signing key) persisted in the state dir, the agent permission template, the
 * embedded JetStream nats-server, and the controller's own connection and buckets.
 * No connection is anonymous; each agent is confined to its own subjects and
 * read access to the peers bucket.
 */
export {
  Authority,
  UserCredentials,
  WEFT_ACCOUNT_NAME,
  assertUserPublicKey,
  authorityPath,
  loadAuthority,
  loadOrCreateAuthority,
  type AuthorityKeys,
  type IssueAgentUserOptions,
} from "./authority.js";
export { agentPermissions, assertNodeId, kvReadSubjects, kvStreamName, type AgentPermissions } from "./permissions.js";
export {
  findNatsServer,
  serverConfig,
  startEmbeddedNats,
  type EmbeddedNats,
  type EmbeddedNatsOptions,
  type NatsServerExit,
} from "./embedded.js";
export {
  BUCKET_HISTORY,
  connectController,
  ensureBuckets,
  type ConnectControllerOptions,
  type EnsureBucketsOptions,
} from "./connect.js";
export {
  AuthorityStateError,
  InvalidNodeIdError,
  InvalidUserKeyError,
  NatsLayerError,
  NatsServerNotFoundError,
  NatsServerStartError,
} from "./errors.js";
export { silentLogger, type Logger } from "./logger.js";
export { superviseEmbeddedNats, type SupervisedNats } from "./supervisor.js";
