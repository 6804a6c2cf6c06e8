/**
 * @weft/agent/host — what the host's service tools (`weft up`, `weft down`) need from the agent
 * without loading it (NATS, enrollment, the eBPF datapath, metrics, its control loops): the config
 * schema, to write and check /etc/weft/agent.yaml, and the teardown that leaves the overlay for good.
 */
export { AgentConfig, type AgentConfigInput } from "./config.js";
export { teardown, teardownSteps, type TeardownInput, type TeardownReport, type TeardownStep } from "./teardown.js";
