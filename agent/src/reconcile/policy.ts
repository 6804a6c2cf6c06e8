/**
 * This node's compiled policy in the datapath's policy maps: the cached one at start (before any
 * program is attached), then each newer revision the policy watch reports, one at a time with the
 * latest winning. An older or repeated revision is never applied. Records what it applied
 * (`state.appliedPolicy`, the status' policy revision and entry count).
 */
import type { NodePolicyRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { LatestWins } from "@weft/util";
import type { AgentDatapath } from "../datapath/datapath.js";
import type { StateHolder } from "../state/holder.js";
import type { StatusReporter } from "../status/reporter.js";

export interface AppliedPolicy {
  /** -1: nothing applied yet; 0: the node has no policy key. */
  revision: number;
  record: NodePolicyRecord | null;
}

export interface PolicyReconcilerOptions {
  /** Undefined when datapath.enabled is false: revisions are still recorded, nothing is enforced. */
  datapath: AgentDatapath | undefined;
  state: StateHolder;
  status: StatusReporter;
  log: Logger;
}

export class PolicyReconciler {
  #applied: AppliedPolicy;
  readonly #queue: LatestWins<AppliedPolicy>;

  constructor(private readonly o: PolicyReconcilerOptions) {
    this.#applied = o.state.current.appliedPolicy ?? { revision: -1, record: null };
    this.#queue = new LatestWins<AppliedPolicy>(
      (next) => this.#apply(next),
      (err) => o.log.error({ err }, "applying the node policy failed; keeping the last applied entries, will retry on the next change"),
    );
  }

  /** The policy applied last (from the cache until NATS answers). */
  get applied(): AppliedPolicy {
    return this.#applied;
  }

  /** Fail static: the cached policy back into the maps (refills them after a reboot) before programs are attached. */
  restore(): void {
    const cached = this.o.state.current.appliedPolicy;
    if (this.o.datapath && cached) this.o.datapath.applyPolicy(cached.record);
  }

  /** Applies `record` at `revision` after the one being applied, unless a newer one is applied first. */
  submit(record: NodePolicyRecord | null, revision: number): void {
    this.#queue.submit({ record, revision });
  }

  /** Resolves when no policy is pending or being applied. */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  async #apply(next: AppliedPolicy): Promise<void> {
    if (next.revision <= this.#applied.revision) return;
    if (this.o.datapath) {
      const r = this.o.datapath.applyPolicy(next.record);
      this.o.log.info({ revision: next.revision, entries: next.record?.entries.length ?? 0, policies: next.record?.policies ?? [], ...r }, "policy applied");
    }
    this.#applied = next;
    await this.o.state.update({ appliedPolicy: next });
    this.o.status.publish({ policyRevision: next.revision, policyEntries: next.record?.entries.length ?? 0 });
  }
}
