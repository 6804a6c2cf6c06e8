/**
 * Lab options: one schema holds every default. Every public lab function takes the same
 * options object, so a second lab (another prefix) can coexist with the demo's.
 */
import { z } from "zod";
import { LabOptionsError } from "./errors.js";
import { noopLogger, type LabLogger } from "./logger.js";

/** Namespaces are named `<prefix>-…`; keep prefixes short, lowercase and shell-friendly. */
const PREFIX = /^[a-z][a-z0-9]{0,9}$/;

const LabOptionsSchema = z.object({
  /** Namespace name prefix: `weft` makes `weft-inet`, `weft-aws-1`, … */
  prefix: z.string().regex(PREFIX, "prefix must match /^[a-z][a-z0-9]{0,9}$/").default("weft"),
  /** Root of per-host directories: `<stateRoot>/<prefix>/hosts/<name>/`. */
  stateRoot: z.string().min(1).default("/var/lib/weft-lab"),
  /** Where the lab records what it created: `<runDir>/<prefix>.json`. */
  runDir: z.string().min(1).default("/run/weft-lab"),
});

/** Options accepted by every lab function. All fields are optional. */
export interface LabOptions {
  prefix?: string;
  stateRoot?: string;
  runDir?: string;
  /** Structured logger (pino-compatible); the lab logs with `component: "lab"`. */
  logger?: LabLogger;
}

/** Options with every default filled in. */
export interface ResolvedLabOptions {
  prefix: string;
  stateRoot: string;
  runDir: string;
  logger: LabLogger;
}

/** Validates options and fills defaults. Throws LabOptionsError on an invalid value. */
export function resolveLabOptions(opts: LabOptions = {}): ResolvedLabOptions {
  const { logger, ...rest } = opts;
  const parsed = LabOptionsSchema.safeParse(rest);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new LabOptionsError(`lab options: ${issues}`, { cause: parsed.error });
  }
  return { ...parsed.data, logger: logger ?? noopLogger };
}
