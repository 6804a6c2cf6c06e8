/**
 * The one structured logger: pino to stderr (stdout stays clean for --json),
 * with secrets redacted by field name wherever they appear.
 */
import { pino, type Logger } from "pino";

export const REDACTED_FIELDS = ["joinKey", "key", "adminToken", "token", "userJwt", "seed", "privateKey", "authorization"];

export function createLogger(level = process.env.WEFT_LOG_LEVEL ?? "info"): Logger {
  const paths = REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);
  return pino({ level, base: { pid: process.pid }, redact: { paths, censor: "[redacted]" } }, pino.destination(2));
}
