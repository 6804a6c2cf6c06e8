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
  layout: z
    .object({
      /** Two more NAT'd sites: `branch` (masquerade) and `cgnat` (a random source port per destination). */
      natSites: z.boolean().default(false),
      /** azure reuses aws's 10.10.0.0/16; both have a machine at 10.10.0.5. */
      overlap: z.boolean().default(false),
      /** A smaller MTU for every link of a site, e.g. `{ branch: 1280 }`. */
      mtu: z.record(z.string(), z.number().int().min(1280).max(9000)).optional(),
      /**
       * Controller hosts: 1 (`ctl`, the controller with its embedded nats-server) or 3 (`ctl-1..3`,
       * each a nats-server of one JetStream cluster and a controller on it).
       */
      controllers: z.union([z.literal(1), z.literal(3)]).default(1),
    })
    .strict()
    .prefault({}),
});

/** Which lab to build beyond the default seven hosts (see topology.ts). */
export type LabLayout = z.input<typeof LabOptionsSchema>["layout"] & {};

/** Options accepted by every lab function. All fields are optional. */
export interface LabOptions {
  prefix?: string;
  stateRoot?: string;
  runDir?: string;
  /** More sites, overlapping networks, smaller MTUs: what a suite asks for (default: the seven-host lab). */
  layout?: LabLayout;
  /** Structured logger (pino-compatible); the lab logs with `component: "lab"`. */
  logger?: LabLogger;
}

/** Options with every default filled in. */
export interface ResolvedLabOptions {
  prefix: string;
  stateRoot: string;
  runDir: string;
  layout: { natSites: boolean; overlap: boolean; mtu?: Record<string, number> | undefined; controllers: 1 | 3 };
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
