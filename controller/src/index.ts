/**
 * @weft/controller — the Weft control plane: NATS + JetStream KV state, join
 * keys, enrollment, IPAM, node registry and liveness, and the REST API.
 */
export { startController, CONTROLLER_VERSION, type RunningController } from "./controller.js";
export { ControllerConfig, type ControllerConfigInput } from "./config.js";
export { ADMIN_TOKEN_FILE } from "./admin-token.js";
export * from "./errors.js";
export { natsServerConfigFragment } from "./nats-config.js";
