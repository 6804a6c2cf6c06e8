/**
 * @weft/agent/control-plane — the agent's control plane without its data plane: enrollment over
 * the REST API, the NATS connection with this node's own credentials, the session that runs the
 * peers, policy and path-plan watches (and restarts them after a reconnect), and the heartbeat
 * publisher. The agent itself composes these with WireGuard and eBPF (agent.ts); the scale
 * benchmark (test/bench/scale.ts) runs thousands of them in one process to load a controller
 * exactly as agents do.
 */
export { enroll, CONTROLLER_CA_FILE, type Enrolled, type EnrollOptions } from "./enroll/client.js";
export { connectNats, natsTransport, NatsSession, type NatsSessionOptions } from "./session/nats.js";
export { Heartbeats, heartbeat, type HeartbeatsOptions } from "./session/heartbeats.js";
export { PeerWatch, PeerView, type PeerSet } from "./control/peer-watch.js";
export { NodePolicyWatch } from "./control/policy-watch.js";
export type { NatsIdentity } from "./state/nkey.js";
export { AgentState } from "./state/store.js";
export type { AgentStatus } from "./status/file.js";
