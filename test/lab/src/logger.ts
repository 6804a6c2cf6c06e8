/** The logger the lab takes: the shared one from the wire contract package. */
export { silentLogger as noopLogger, type Logger as LabLogger } from "@weft/protocol";
