/**
 * Keeps this node's workloads in line with its config: asks the controller for their addresses
 * and identities (declaratively: the whole set), plumbs each one's veth, puts the datapath on it,
 * and removes workloads dropped from the config. The last answer is cached in the agent state,
 * so after a restart workloads are plumbed before the controller is reachable (fail static).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Workload, WorkloadSpec } from "@weft/protocol";
import type { Logger } from "pino";
import { requestWorkloads, type WorkloadsResult } from "../control/workloads-client.js";
import type { AgentDatapath } from "../datapath/datapath.js";
import type { CommandRunner } from "../exec/runner.js";
import { enableForwarding, plumbWorkload, unplumbWorkload } from "./plumbing.js";

export interface ConfiguredWorkload extends WorkloadSpec {
  netns: string;
}

export interface WorkloadManagerOptions {
  nodeId: string;
  configured: ConfiguredWorkload[];
  overlayAddress: () => string;
  mtu: number;
  datapath: AgentDatapath | undefined;
  run: CommandRunner;
  log: Logger;
  /** Persists the controller's answer (agent state). */
  save: (result: WorkloadsResult) => Promise<void>;
}

export class WorkloadManager {
  constructor(private readonly o: WorkloadManagerOptions) {}

  /** Plumbs the workloads recorded by the controller earlier (from the agent's cache). */
  async restore(cached: readonly Workload[] | undefined): Promise<void> {
    if (!cached || cached.length === 0) return;
    await this.#plumbAll(cached);
  }

  /** Sends the configured set to the controller and converges on its answer. Throws on refusal or no answer. */
  async sync(nc: NatsConnection, previous: readonly Workload[] | undefined): Promise<WorkloadsResult> {
    const specs = this.o.configured.map(({ netns: _netns, ...spec }) => spec);
    const result = await requestWorkloads(nc, this.o.nodeId, specs);
    await this.o.save(result);
    await this.#plumbAll(result.workloads);
    const keep = new Set(result.workloads.map((w) => w.name));
    for (const old of previous ?? []) {
      if (keep.has(old.name)) continue;
      if (await unplumbWorkload(this.o.run, old.name)) this.o.log.info({ workload: old.name }, "workload removed");
    }
    return result;
  }

  async #plumbAll(workloads: readonly Workload[]): Promise<void> {
    const byName = new Map(this.o.configured.map((c) => [c.name, c]));
    if (workloads.length > 0) await enableForwarding(this.o.run);
    const attached: number[] = [];
    for (const w of workloads) {
      const conf = byName.get(w.name);
      if (!conf) continue; // recorded earlier but no longer configured: sync() removes it
      const host = await plumbWorkload(this.o.run, { name: w.name, netns: conf.netns, address: w.address }, { overlayAddress: this.o.overlayAddress(), mtu: this.o.mtu });
      const ifindex = await this.o.datapath?.attachWorkload(host, { address: w.address, identity: w.identity.id });
      if (ifindex !== undefined) attached.push(ifindex);
      this.o.log.info({ workload: w.name, address: w.address, identity: w.identity.spiffeId, device: host }, "workload plumbed");
    }
    this.o.datapath?.retainEndpoints(attached);
  }
}
