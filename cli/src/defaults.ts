/** Default paths the CLI's options show in --help and fall back to (no imports: program.ts loads this for every command). */

/** Where `weft controller` keeps its keys, admin token, TLS material and embedded NATS data. */
export const DEFAULT_CONTROLLER_STATE_DIR = "/var/lib/weft/controller";

/** Where `weft agent` keeps its keys and state; `weft status` and `weft flows` read it. */
export const DEFAULT_AGENT_STATE_DIR = "/var/lib/weft/agent";
