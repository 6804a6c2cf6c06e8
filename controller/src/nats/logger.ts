/**
 * The structured logger this folder needs: a subset of pino's API, so a pino logger
 * (or a child of one) can be passed directly. Field names follow the project's
 * standard (`component`, `subject`, `node`, …); no secret is ever a field value.
 */
export interface Logger {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** A logger that drops everything; the default when none is passed. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
