/**
 * The one owner of the agent's live status (`status.json`, read by `weft status` and `weft
 * flows`, and the inputs of the NATS and peer gauges). Reconcilers report what they applied with
 * `publish`; the file is written one write at a time, each write holding the latest status, so
 * an older write never lands after a newer one. A publish that changes no field writes nothing
 * (some reporters publish on a timer: the paths every 2 s, mostly the same), so `updatedAt` is when
 * the status last changed. A failed write is logged; the agent keeps going.
 */
import type { Logger } from "pino";
import { SingleFlight } from "@weft/util";
import { writeStatus, type AgentStatus } from "./file.js";

export class StatusReporter {
  #status: AgentStatus;
  readonly #writer: SingleFlight<void>;
  #published = false;

  /** Nothing is written until the first `publish`. */
  constructor(
    private readonly dir: string,
    initial: Omit<AgentStatus, "updatedAt">,
    private readonly log: Logger,
  ) {
    this.#status = { ...initial, updatedAt: new Date().toISOString() };
    this.#writer = new SingleFlight(() => writeStatus(this.dir, this.#status));
  }

  get current(): Readonly<AgentStatus> {
    return this.#status;
  }

  /** Sets the given fields, stamps `updatedAt` and writes the file in the background; nothing when no field changes (but the first time). */
  publish(change: Partial<AgentStatus>): void {
    const current = this.#status as unknown as Record<string, unknown>;
    if (this.#published && Object.entries(change).every(([k, v]) => sameJson(current[k], v))) return;
    this.#published = true;
    this.#status = { ...this.#status, ...change, updatedAt: new Date().toISOString() };
    this.#writer.run().catch((err: unknown) => this.log.warn({ err }, "cannot write status file"));
  }

  /** Resolves when every write asked for so far is done (or failed). */
  idle(): Promise<void> {
    return this.#writer.idle();
  }
}

/**
 * Whether two JSON-shaped values (what status.json holds) are equal, without allocating: it runs
 * on every publish, some on a timer with a hundred paths (util.isDeepStrictEqual allocated ~75 KB a
 * call, most of the idle agent's garbage). Keys whose value is undefined count as absent, as in JSON.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let defined = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    defined++;
    if (!sameJson(x[k], y[k])) return false;
  }
  for (const k in y) if (y[k] !== undefined) defined--;
  return defined === 0;
}
