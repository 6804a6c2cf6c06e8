/**
 * The logger every package accepts: the structural subset of pino that the code
 * uses, so callers pass one pino logger (named with `child({ component })`) and
 * tests pass `silentLogger`. Field names are stable: `node`, `peer`, `site`,
 * `subject`, `revision`, `iface`.
 */

export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => {};

export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};
