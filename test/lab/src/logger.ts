/**
 * The logger shape the lab accepts: a structural subset of pino's, so callers pass
 * `pino().child({ component: "lab" })` or nothing (the lab is then silent).
 */

export interface LabLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** A logger that drops everything. */
export const noopLogger: LabLogger = {
  debug() {},
  info() {},
  warn() {},
};
