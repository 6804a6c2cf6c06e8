/**
 * The service datapath on this host: the socket programs of @weft/bpf (SockDatapath) on their
 * pins (the lb maps are shared with the tc programs' fallback, which AgentDatapath attached), the
 * cgroup they are attached to, and the maps kept in line with the desired state (desired.ts):
 * VIPs, service entries (one batch each, only what changed), and the network namespaces whose
 * sockets carry which identity (the host's own, each workload's). Reads the counters back for the
 * observer, /metrics and `weft flows`.
 */
import { readFileSync } from "node:fs";
import { DropReason, SockDatapath, flowTableSizes, netnsCookie, type LbDropsValue, type LbRateKey, type LbService, type LbStatsKey, type LbStatsValue, type TypedMap } from "@weft/bpf";
import type { Logger } from "@weft/protocol";
import { DatapathError } from "../errors.js";
import { logCarried } from "../datapath/datapath.js";
import { syncMap, type SyncResult } from "../datapath/sync.js";
import type { DesiredServices } from "./desired.js";

/** The cgroup v2 mount point (`/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on a hybrid one). */
export function cgroup2Root(mounts = readFileSync("/proc/self/mounts", "utf8")): string | undefined {
  for (const line of mounts.split("\n")) {
    const f = line.split(" ");
    if (f[2] === "cgroup2") return f[1];
  }
  return undefined;
}

export interface RefusedCount {
  srcId: number;
  vip: string;
  rateLimited: number;
  noBackend: number;
}

const sameService = (a: LbService, b: LbService) => JSON.stringify(a) === JSON.stringify(b);

export class ServiceDatapath {
  #cgroup: string | undefined;

  private constructor(
    readonly sock: SockDatapath,
    private readonly log: Logger,
  ) {}

  /** Loads the socket programs on the maps pinned under `pinDir` (sized for `flowTableEntries` flows when created). Needs root and a bpffs. */
  static open(pinDir: string, flowTableEntries: number, log: Logger): ServiceDatapath {
    try {
      const sock = SockDatapath.open({ pinDir, maxEntries: flowTableSizes(flowTableEntries) });
      logCarried(log, sock.carried);
      return new ServiceDatapath(sock, log);
    } catch (err) {
      throw new DatapathError(`cannot load the service socket programs pinned at ${pinDir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Attaches the programs to the cgroup v2 directory `path` (replacing an earlier agent's). */
  attach(path: string): void {
    try {
      this.sock.attach(path);
      this.#cgroup = path;
    } catch (err) {
      throw new DatapathError(`cannot attach the service socket programs to cgroup ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  get cgroup(): string | undefined {
    return this.#cgroup;
  }

  /** Converges VIPs and service entries on `desired`. New entries before VIPs, stale VIPs before their entries. */
  apply(desired: DesiredServices): { vips: SyncResult; services: SyncResult } {
    const services = syncMap(this.sock.services, desired.entries, (k) => `${k.vip}:${k.port}/${k.proto}@${k.srcId}`, sameService);
    const vips = syncMap(this.sock.vips, new Map([...desired.vips].map((v) => [v, [v, {}] as const])), (k) => k, () => true);
    return { vips, services };
  }

  /**
   * Which identity each network namespace's sockets carry: this process's own namespace (the
   * host: the node's identity) and each workload's. A namespace that cannot be read is skipped
   * (its sockets are left alone) and logged.
   */
  setSources(host: number | undefined, workloads: readonly { netnsPath: string; identity: number }[]): SyncResult {
    const want = new Map<string, readonly [bigint, { identity: number }]>();
    const add = (cookie: bigint, identity: number) => want.set(cookie.toString(), [cookie, { identity }] as const);
    if (host !== undefined) add(netnsCookie(), host);
    for (const w of workloads) {
      try {
        add(netnsCookie(w.netnsPath), w.identity);
      } catch (err) {
        this.log.warn({ netns: w.netnsPath, err }, "cannot read a workload's network namespace cookie; its sockets are not balanced");
      }
    }
    return syncMap(this.sock.sources, want, (k) => k.toString(), (a, b) => a.identity === b.identity);
  }

  /** Every backend counter (active, connects, failures, latency). */
  stats(): [LbStatsKey, LbStatsValue][] {
    return [...this.sock.stats.entries()];
  }

  /** Deletes the counters of backends that are gone (and have no open connection). */
  pruneStats(keep: (k: LbStatsKey) => boolean): number {
    const stale = this.stats().filter(([k, v]) => !keep(k) && v.active <= 0n).map(([k]) => k);
    if (stale.length > 0) this.sock.stats.deleteMany(stale);
    return stale.length;
  }

  /** Refused new connections per (source identity, VIP). */
  refused(): RefusedCount[] {
    return refusedCounts(this.sock.drops);
  }

  close(): void {
    this.sock.close();
  }
}

export interface LazyServiceDatapathOptions {
  /** Loads the socket programs on their pins (not attached); throws when it cannot. */
  open: () => ServiceDatapath;
  /** Attaches them (once their maps were filled); logs what it could not do. */
  attach: (datapath: ServiceDatapath) => void;
  log: Logger;
}

/**
 * The service datapath, loaded when this node first has a service to balance: loading the socket
 * programs is ~90 ms of the kernel verifier's CPU, which a node with no services would otherwise
 * pay on every start while it is still joining. Loaded at most once: a load that fails is logged
 * and not tried again (workload veths are still balanced by the tc fallback). Attached once, after
 * its owner (the service reconciler) filled the maps, so no socket meets half-filled ones.
 */
export class LazyServiceDatapath {
  #datapath: ServiceDatapath | undefined;
  #tried = false;
  #attached = false;

  constructor(private readonly o: LazyServiceDatapathOptions) {}

  /** The loaded datapath; undefined until something loaded it (or when that failed). */
  get current(): ServiceDatapath | undefined {
    return this.#datapath;
  }

  /** Loads the programs unless done already; undefined when they cannot be loaded. */
  load(): ServiceDatapath | undefined {
    if (this.#tried) return this.#datapath;
    this.#tried = true;
    try {
      this.#datapath = this.o.open();
    } catch (err) {
      this.o.log.error({ err }, "cannot load the service socket programs; services are balanced on workload veths only (tc fallback)");
    }
    return this.#datapath;
  }

  /** Attaches the loaded programs, the first time only; nothing when none are loaded. */
  attach(): void {
    if (!this.#datapath || this.#attached) return;
    this.#attached = true;
    this.o.attach(this.#datapath);
  }

  close(): void {
    this.#datapath?.close();
  }
}

/** The refused new connections a drops map holds, per (source identity, VIP). */
export function refusedCounts(drops: TypedMap<LbRateKey, LbDropsValue>): RefusedCount[] {
  return [...drops.entries()].map(([key, v]) => ({ srcId: key.srcId, vip: key.vip, rateLimited: Number(v.drops[DropReason.rateLimited] ?? 0n), noBackend: Number(v.drops[DropReason.noBackend] ?? 0n) }));
}
