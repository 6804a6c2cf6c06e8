/**
 * @weft/agent/status-view — `weft status` from a running agent over its local API socket, loading
 * nothing but node:http: the view the agent builds from memory (status/view.ts) and the socket's
 * client. The files' readers (zod schemas, WireGuard) are `@weft/agent/local`, for when no agent
 * answers.
 */
export { statusView, isStatusView, type StatusView, type StatusViewPeer } from "./status/view.js";
export { callLocalApi, LocalApiCallError } from "./localapi/client.js";
export { LOCAL_API_SOCKET } from "./localapi/server.js";
