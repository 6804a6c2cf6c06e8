/**
 * The one owner of the agent's live status (`status.json`, read by `weft status` and `weft
 * flows`, and the inputs of the NATS and peer gauges). Reconcilers report what they applied with
 * `publish`; the file is written one write at a time, each write holding the latest status, so
 * an older write never lands after a newer one. A publish that changes no field writes nothing
 * (some reporters publish on a timer: the paths every 2 s, mostly the same), so `updatedAt` is when
 * the status last changed. A failed write is logged; the agent keeps going.
 */
import { isDeepStrictEqual } from "node:util";
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
    if (this.#published && Object.entries(change).every(([k, v]) => isDeepStrictEqual(current[k], v))) return;
    this.#published = true;
    this.#status = { ...this.#status, ...change, updatedAt: new Date().toISOString() };
    this.#writer.run().catch((err: unknown) => this.log.warn({ err }, "cannot write status file"));
  }

  /** Resolves when every write asked for so far is done (or failed). */
  idle(): Promise<void> {
    return this.#writer.idle();
  }
}
