/**
 * Publishes the gateway plan (gateways.ts) into node records: each chosen gateway's record carries
 * `siteRoutes` (and `siteRemaps`, the real ranges behind remapped prefixes), every other node's
 * carries none; the registry rebuilds the peer records agents read. Agents in other sites route those CIDRs into the overlay towards the gateway; the gateway
 * forwards them into its site.
 *
 * When: after every inventory sync (its plan is passed in), when what the plan reads of a node
 * record changes (enrolled, deleted, renamed, relabelled, moved site; coalesced), when a gateway
 * candidate's liveness changes (checked every `checkMs` from the controller's heartbeat table,
 * without reading KV), and every `resyncMs`. A pass reads every node record, so at thousands of
 * nodes it costs hundreds of milliseconds while enrollments arrive faster than that: node changes
 * wait until passes have taken at most a tenth of the time (DutyCycle) — on a small fleet that is
 * never longer than the debounce. The first pass waits `startDelayMs` after start, so
 * heartbeats have said which gateways are online before anything is moved; until then the routes
 * agents already have stay as they are. Passes run one at a time (SingleFlight); a node record
 * changes only when its routes differ.
 */
import type { NodeRecord, SiteRemap } from "@weft/protocol";
import { DutyCycle, SingleFlight } from "@weft/util";
import type { Logger } from "pino";
import type { Liveness } from "../nodes/liveness.js";
import type { NodeRegistry } from "../nodes/registry.js";
import type { NodeMirror } from "../store/mirror.js";
import type { GatewayPlan } from "./gateways.js";

export interface SiteRouteAdvertiserOptions {
  /** The current gateway plan (InventoryPlanner.plan). */
  plan: () => Promise<{ gateways: GatewayPlan }>;
  registry: Pick<NodeRegistry, "updateNode" | "list">;
  liveness: Pick<Liveness, "status">;
  /** The node records (the controller's shared mirror), followed for changes. */
  nodes: NodeMirror;
  startDelayMs: number;
  checkMs: number;
  resyncMs: number;
  /** Node changes within this window make one pass. Default 500 ms. */
  debounceMs?: number;
  log: Logger;
}

/** Passes after node changes take at most this share of the controller's time. */
const PASS_SHARE = 0.1;

/** What the gateway plan reads of a node record: a change to anything else needs no new pass. */
function planInput(node: Pick<NodeRecord, "name" | "site" | "labels" | "siteSource" | "endpoints">): string {
  return JSON.stringify([node.name, node.site, node.labels, node.siteSource ?? null, node.endpoints]);
}

export class SiteRouteAdvertiser {
  /** Nodes whose record carries site routes (as far as this advertiser wrote or read them). */
  private advertising = new Map<string, string[]>();
  /** Liveness of each gateway candidate when the last plan was made. */
  private candidates = new Map<string, string>();
  /** planInput of each node, to tell which node record changes matter. */
  private readonly inputs = new Map<string, string>();
  private ready = false;
  private stopped = false;
  /** The plan the next pass publishes, when the caller just computed it; else the pass makes one. */
  private given: GatewayPlan | undefined;
  private readonly cycle = new DutyCycle(PASS_SHARE);
  private readonly passes = new SingleFlight(() => this.cycle.run(() => this.pass()));
  private readonly timers: NodeJS.Timeout[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private unlisten: (() => void) | undefined;

  constructor(private readonly o: SiteRouteAdvertiserOptions) {}

  /** Read which nodes advertise now, follow node changes, and schedule the first pass. */
  async start(): Promise<void> {
    for (const n of await this.o.registry.list()) {
      this.inputs.set(n.nodeId, planInput(n));
      if (n.siteRoutes?.length) this.advertising.set(n.nodeId, n.siteRoutes);
    }
    this.unlisten = this.o.nodes.listen((nodeId) => {
      if (this.noteChange(nodeId)) this.soon();
    });
    const first = setTimeout(() => {
      this.ready = true;
      void this.refresh();
    }, this.o.startDelayMs);
    const check = setInterval(() => this.checkLiveness(), this.o.checkMs);
    const resync = setInterval(() => void this.refresh(), this.o.resyncMs);
    for (const t of [first, check, resync]) {
      t.unref();
      this.timers.push(t);
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.debounce) clearTimeout(this.debounce);
    this.unlisten?.();
    return this.passes.idle();
  }

  /**
   * Publish the current plan: `plan` when the caller just computed it (after a sync) and no pass
   * is going, else a fresh one. Passes never overlap; a request during one makes one more pass,
   * with a fresh plan. Errors are logged, never thrown.
   */
  refresh(plan?: GatewayPlan): Promise<void> {
    if (!this.ready || this.stopped) return Promise.resolve();
    if (!this.passes.busy) this.given = plan;
    return this.passes.run();
  }

  private async pass(): Promise<void> {
    const given = this.given;
    this.given = undefined;
    if (this.stopped) return;
    try {
      await this.publish(given ?? (await this.o.plan()).gateways);
    } catch (err) {
      this.o.log.error({ err }, "site routes: cannot publish the gateway plan; retrying on the next change");
    }
  }

  private async publish(plan: GatewayPlan): Promise<void> {
    this.candidates = new Map(plan.candidates.map((c) => [c.nodeId, c.status]));
    const ids = new Set([...this.advertising.keys(), ...plan.byNode.keys()]);
    const next = new Map<string, string[]>();
    for (const nodeId of ids) {
      const want = plan.byNode.get(nodeId) ?? [];
      const explicit = plan.explicitByNode.get(nodeId) ?? [];
      const remaps = plan.remapsByNode.get(nodeId) ?? [];
      const result = await this.o.registry.updateNode(nodeId, (node) => withSiteRoutes(node, want, explicit, remaps));
      if (result.outcome === "gone") continue;
      if (want.length > 0) next.set(nodeId, want);
      if (result.outcome === "updated") {
        if (want.length > 0) this.o.log.info({ node: nodeId, routes: want }, "node advertises its site's routes");
        else this.o.log.info({ node: nodeId, routes: this.advertising.get(nodeId) ?? [] }, "node no longer advertises site routes");
      }
    }
    this.advertising = next;
  }

  /** Whether a watched node record change can change the plan (its own siteRoutes writes cannot). */
  private noteChange(nodeId: string): boolean {
    const node = this.o.nodes.entries.get(nodeId);
    if (!node) {
      this.inputs.delete(nodeId);
      return true;
    }
    const input = planInput(node);
    if (this.inputs.get(nodeId) === input) return false;
    this.inputs.set(nodeId, input);
    return true;
  }

  private soon(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(
      () => {
        this.debounce = undefined;
        void this.refresh();
      },
      this.cycle.delay(this.o.debounceMs ?? 500),
    );
    this.debounce.unref();
  }

  private checkLiveness(): void {
    for (const [nodeId, was] of this.candidates) {
      if (this.o.liveness.status(nodeId) !== was) {
        void this.refresh();
        return;
      }
    }
  }
}

/** With advertising turned off: no node record keeps site routes from an earlier run. */
export async function withdrawSiteRoutes(registry: Pick<NodeRegistry, "updateNode" | "list">, log: Logger): Promise<number> {
  let withdrawn = 0;
  for (const n of await registry.list()) {
    if (!n.siteRoutes?.length) continue;
    if ((await registry.updateNode(n.nodeId, (node) => withSiteRoutes(node, []))).outcome === "updated") withdrawn++;
  }
  if (withdrawn > 0) log.info({ nodes: withdrawn }, "inventory.advertiseSiteRoutes is false: withdrew the site routes nodes advertised");
  return withdrawn;
}

/**
 * `node` with exactly `routes` as its site routes (`explicit`: those the config allows outside
 * private space; `remaps`: the real ranges behind remapped prefixes), or undefined when it has them already.
 */
export function withSiteRoutes(node: NodeRecord, routes: readonly string[], explicit: readonly string[] = [], remaps: readonly SiteRemap[] = []): NodeRecord | undefined {
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((r, i) => r === b[i]);
  if (same(node.siteRoutes ?? [], routes) && same(node.explicitSiteRoutes ?? [], explicit) && JSON.stringify(node.siteRemaps ?? []) === JSON.stringify(remaps)) return undefined;
  const { siteRoutes: _old, explicitSiteRoutes: _oldExplicit, siteRemaps: _oldRemaps, ...rest } = node;
  return {
    ...rest,
    ...(routes.length > 0 ? { siteRoutes: [...routes] } : {}),
    ...(explicit.length > 0 ? { explicitSiteRoutes: [...explicit] } : {}),
    ...(remaps.length > 0 ? { siteRemaps: remaps.map((m) => ({ ...m })) } : {}),
  };
}
