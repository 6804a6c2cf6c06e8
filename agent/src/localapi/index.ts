/**
 * The agent's local API (unix socket, root and the weft group only): the server the agent's parts
 * register routes on, and the client the `weft` command uses.
 */
export { LOCAL_API_SOCKET, LocalApi, LocalApiError, type LocalHandler, type LocalRequest } from "./server.js";
export { callLocalApi, LocalApiCallError } from "./client.js";
export { groupId } from "./group.js";
