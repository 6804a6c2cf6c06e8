/**
 * @weft/protocol — the wire contract shared by agent, controller and CLI:
 * bucket and subject names, message schemas and their versions, address helpers.
 * The agent and the controller never import each other; both import this.
 */
export * from "./names.js";
export * from "./net.js";
export * from "./messages.js";
export * from "./client.js";
