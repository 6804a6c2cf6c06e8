/**
 * @weft/protocol — the wire contract shared by agent, controller and CLI:
 * bucket and subject names, message schemas and their versions, address helpers,
 * the REST client and the controller CA pin.
 * The agent and the controller never import each other; both import this.
 */
export * from "./names.js";
export * from "./net.js";
export * from "./provider.js";
export * from "./messages.js";
export * from "./attestation.js";
export * from "./policy.js";
export * from "./paths.js";
export * from "./service.js";
export * from "./spiffe.js";
export * from "./inventory.js";
export * from "./flows.js";
export * from "./console.js";
export * from "./client.js";
export * from "./ca-pin.js";
export * from "./ed25519.js";
export * from "./logger.js";
export * from "./text.js";
export * from "./field-path.js";
export * from "./ports.js";
export * from "./wireguard-keys.js";
