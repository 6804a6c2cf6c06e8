/**
 * Publishes the gateway plan (gateways.ts) into peer records: each chosen gateway's peer record
 * carries `siteRoutes`, every other node's carries none. Agents in other sites route those CIDRs
 * into the overlay towards the gateway; the gateway forwards them into its site.
 *
 * When: after every inventory sync (its plan is passed in), when node records change (enrolled,
 * deleted, relabelled; coalesced), when a gateway candidate's liveness changes (checked every
 * `checkMs` from the controller's heartbeat table, without reading KV), and every `resyncMs`. The
 * first pass waits `startDelayMs` after start, so heartbeats have said which gateways are online
 * before anything is moved; until then the routes agents already have stay as they are.
 * Peer records change with compare-and-set and only when their routes differ.
 */
import { KvWatchInclude, type KV, type KvWatchEntry } from "@nats-io/kv";
import type { PeerRecord } from "@weft/protocol";
import type { Logger } from "pino";
import type { Liveness } from "../nodes/liveness.js";
import type { NodeRegistry } from "../nodes/registry.js";
import type { GatewayPlan } from "./gateways.js";

export interface SiteRouteAdvertiserOptions {
  /** The current gateway plan (InventorySync.plan). */
  plan: () => Promise<{ gateways: GatewayPlan }>;
  registry: Pick<NodeRegistry, "updatePeer" | "peerRecords">;
  liveness: Pick<Liveness, "status">;
  /** The nodes bucket, watched for changes. */
  nodesKv: KV;
  startDelayMs: number;
  checkMs: number;
  resyncMs: number;
  /** Node changes within this window make one pass. Default 500 ms. */
  debounceMs?: number;
  log: Logger;
}

type Stoppable = AsyncIterable<KvWatchEntry> & { stop(): void };

export class SiteRouteAdvertiser {
  /** Nodes whose peer record carries site routes (as far as this advertiser wrote or read them). */
  private advertising = new Map<string, string[]>();
  /** Liveness of each gateway candidate when the last plan was made. */
  private candidates = new Map<string, string>();
  private ready = false;
  private stopped = false;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private watch: Stoppable | undefined;

  constructor(private readonly o: SiteRouteAdvertiserOptions) {}

  /** Read which nodes advertise now, follow node changes, and schedule the first pass. */
  async start(): Promise<void> {
    for (const p of await this.o.registry.peerRecords()) if (p.siteRoutes?.length) this.advertising.set(p.nodeId, p.siteRoutes);
    this.watch = (await this.o.nodesKv.watch({ include: KvWatchInclude.UpdatesOnly })) as Stoppable;
    void (async () => {
      try {
        for await (const _e of this.watch!) this.soon();
      } catch (err) {
        if (!this.stopped) this.o.log.warn({ err }, "site routes: watching node records failed; the periodic pass still runs");
      }
    })();
    const first = setTimeout(() => {
      this.ready = true;
      this.refresh();
    }, this.o.startDelayMs);
    const check = setInterval(() => this.checkLiveness(), this.o.checkMs);
    const resync = setInterval(() => this.refresh(), this.o.resyncMs);
    for (const t of [first, check, resync]) {
      t.unref();
      this.timers.push(t);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.debounce) clearTimeout(this.debounce);
    this.watch?.stop();
  }

  /**
   * Publish the current plan: `plan` when the caller just computed it (after a sync), else a fresh
   * one. Passes never overlap; a request during one makes one more pass, with a fresh plan.
   */
  refresh(plan?: GatewayPlan): Promise<void> {
    if (!this.ready || this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let given = plan;
      do {
        this.again = false;
        try {
          await this.publish(given ?? (await this.o.plan()).gateways);
        } catch (err) {
          this.o.log.error({ err }, "site routes: cannot publish the gateway plan; retrying on the next change");
        }
        given = undefined;
      } while (this.again && !this.stopped);
      this.running = undefined;
    })();
    return this.running;
  }

  private async publish(plan: GatewayPlan): Promise<void> {
    this.candidates = new Map(plan.candidates.map((c) => [c.nodeId, c.status]));
    const ids = new Set([...this.advertising.keys(), ...plan.byNode.keys()]);
    const next = new Map<string, string[]>();
    for (const nodeId of ids) {
      const want = plan.byNode.get(nodeId) ?? [];
      const result = await this.o.registry.updatePeer(nodeId, (peer) => withSiteRoutes(peer, want));
      if (result === "gone") continue;
      if (want.length > 0) next.set(nodeId, want);
      if (result === "updated") {
        if (want.length > 0) this.o.log.info({ node: nodeId, routes: want }, "node advertises its site's routes");
        else this.o.log.info({ node: nodeId, routes: this.advertising.get(nodeId) ?? [] }, "node no longer advertises site routes");
      }
    }
    this.advertising = next;
  }

  private soon(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.refresh();
    }, this.o.debounceMs ?? 500);
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

/** With advertising turned off: no peer record keeps site routes from an earlier run. */
export async function withdrawSiteRoutes(registry: Pick<NodeRegistry, "updatePeer" | "peerRecords">, log: Logger): Promise<number> {
  let withdrawn = 0;
  for (const p of await registry.peerRecords()) {
    if (!p.siteRoutes?.length) continue;
    if ((await registry.updatePeer(p.nodeId, (peer) => withSiteRoutes(peer, []))) === "updated") withdrawn++;
  }
  if (withdrawn > 0) log.info({ nodes: withdrawn }, "inventory.advertiseSiteRoutes is false: withdrew the site routes nodes advertised");
  return withdrawn;
}

/** `peer` with exactly `routes` as its site routes, or undefined when it has them already. */
export function withSiteRoutes(peer: PeerRecord, routes: readonly string[]): PeerRecord | undefined {
  const have = peer.siteRoutes ?? [];
  if (have.length === routes.length && have.every((r, i) => r === routes[i])) return undefined;
  const { siteRoutes: _old, ...rest } = peer;
  return routes.length > 0 ? { ...rest, siteRoutes: [...routes] } : rest;
}
