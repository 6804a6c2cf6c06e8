/**
 * @weft/agent — the host agent: enrollment, WireGuard, peer sync over NATS,
 * heartbeats and local state.
 */
export { importDeferredModules, startAgent, type RunningAgent } from "./agent.js";
export { AgentConfig, type AgentConfigInput } from "./config.js";
export { AgentError, EnrollmentRejectedError, ControllerUnavailableError, StateError } from "./errors.js";
export { AgentState, loadState, STATE_FILE } from "./state/store.js";
export { STATUS_FILE, type AgentStatus } from "./status/file.js";
export { desiredPeers } from "./peers/desired.js";
export { readPeers, type ActualPeer } from "./wireguard/index.js";
export { readPinnedFlows, flowRows, type FlowRow } from "./datapath/flows.js";
export { readPinnedRefused, refusedFlowRows } from "./services/flows.js";
export { AgentDatapath, readFlows, type FlowCounters } from "./datapath/datapath.js";
export { callLocalApi, LocalApiCallError, LOCAL_API_SOCKET } from "./localapi/index.js";
