/**
 * @weft/controller — the Weft control plane: NATS + JetStream KV state, join
 * keys, enrollment, IPAM (overlay addresses and workload prefixes), node
 * registry and liveness, the workloads service, per-node policy distribution,
 * and the REST API (HTTPS with the controller's own CA).
 */
export { startController, CONTROLLER_VERSION, type RunningController } from "./controller.js";
export { ControllerConfig, type ControllerConfigInput } from "./config.js";
export { ADMIN_TOKEN_FILE } from "./admin-token.js";
export { TLS_DIR, CA_CERT_FILE, CA_HASH_FILE } from "./tls/index.js";
export * from "./errors.js";
export { natsServerConfigFragment } from "./nats-config.js";
export { backupController, restoreController, BackupError, RestoreTargetNotEmptyError, type BackupResult, type RestoreResult } from "./backup/index.js";
export * from "./mesh/index.js";
