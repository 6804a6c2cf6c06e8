/**
 * @weft/agent/local — what the host's own tools read from a running agent, without loading the
 * agent itself (NATS, enrollment, the eBPF datapath, metrics, its control loops): the state and
 * status files in its state directory and the live WireGuard peers. `weft status` imports this
 * entry, so it starts in a fraction of the agent's time. The flow counters in the agent's pinned
 * eBPF maps are `@weft/agent/flows` (datapath/flows.ts), which loads libbpf-ts.
 */
export { AgentState, loadState, STATE_FILE } from "./state/store.js";
export { STATUS_FILE, type AgentStatus } from "./status/file.js";
export { statusView, type StatusView } from "./status/view.js";
export { readPeers, type ActualPeer } from "./wireguard/index.js";
export { LOCAL_API_SOCKET } from "./localapi/server.js";
export { callLocalApi, LocalApiCallError } from "./localapi/client.js";
