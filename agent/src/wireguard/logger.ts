/** The logger this module takes: the shared one from the wire contract package. */
export { silentLogger, type LogFn, type Logger } from "@weft/protocol";
