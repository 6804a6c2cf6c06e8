/**
 * The one owner of `state.json` once the node is enrolled. Every part of the agent reads the
 * current state here and changes its own fields through `update`: the change is applied to the
 * latest state at once (two changes never lose each other) and the file is written one write at
 * a time, each write holding every change made before it started (`SingleFlight`), so an older
 * write can never land after a newer one.
 */
import { SingleFlight } from "@weft/util";
import type { z } from "zod";
import { AgentState, loadState, saveState } from "./store.js";

/** AgentState narrowed to a change's fields, one per set of field names (the agent changes a handful). */
const schemas = new Map<string, z.ZodType<Partial<AgentState>>>();

function schemaOf(change: Partial<AgentState>): z.ZodType<Partial<AgentState>> {
  const fields = Object.keys(change).sort() as (keyof AgentState)[];
  const name = fields.join(",");
  let schema = schemas.get(name);
  if (schema === undefined) {
    const unknown = fields.filter((f) => !Object.hasOwn(AgentState.shape, f));
    if (unknown.length > 0) throw new TypeError(`state: no such field ${unknown.join(", ")}`);
    schema = AgentState.pick(Object.fromEntries(fields.map((f) => [f, true])) as Record<keyof AgentState, true>).strict();
    schemas.set(name, schema);
  }
  return schema;
}

export class StateHolder {
  #state: AgentState;
  readonly #writer: SingleFlight<void>;
  readonly #listeners = new Set<(state: AgentState) => void>();

  private constructor(
    readonly dir: string,
    state: AgentState,
  ) {
    this.#state = state;
    this.#writer = new SingleFlight(() => saveState(this.dir, this.#state));
  }

  /** The enrolled node's state from `<dir>/state.json`; undefined when it was never enrolled. */
  static async load(dir: string): Promise<StateHolder | undefined> {
    const state = await loadState(dir);
    return state === undefined ? undefined : new StateHolder(dir, state);
  }

  /** Writes the first state (the enrollment's result: it marks the enrollment done) and owns it from then on. */
  static async create(dir: string, state: AgentState): Promise<StateHolder> {
    const holder = new StateHolder(dir, AgentState.parse(state));
    await holder.#writer.run();
    return holder;
  }

  get current(): AgentState {
    return this.#state;
  }

  /**
   * Sets the given fields on the current state and resolves once a write holding them is on disk.
   * A change that does not fit the schema throws and changes nothing.
   */
  async update(change: Partial<AgentState>): Promise<void> {
    // Only the fields changed are checked: the rest were when they were set (or loaded), and the
    // whole state holds the node's peers and policy, which each peer set would otherwise check again.
    this.#state = { ...this.#state, ...schemaOf(change).parse(change) };
    for (const l of this.#listeners) l(this.#state);
    await this.#writer.run();
  }

  /** Called (synchronously, with the new state) after every update; returns the unsubscribe. A listener must not throw. */
  onChange(listener: (state: AgentState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves when no write is running or queued. */
  idle(): Promise<void> {
    return this.#writer.idle();
  }
}
