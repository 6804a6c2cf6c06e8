/**
 * The agent's eBPF datapath: the pinned programs and maps of @weft/bpf, attached to this host's
 * devices and kept in line with the control plane.
 *
 *   weft0 ingress            weft_overlay_in    policy for traffic that arrives over WireGuard
 *   weft0 egress             weft_overlay_out   conntrack of flows sent, so their replies pass
 *   workload veth ingress    weft_from_workload same-site VXLAN encapsulation of workload traffic
 *   workload veth egress     weft_to_workload   policy for traffic into a workload not yet checked
 *   VXLAN device ingress     weft_vxlan_in      policy with the source identity from the VNI
 *
 * Maps and programs are pinned under the pin dir, so a restarted (or crashed) agent leaves the
 * attached programs enforcing with the last entries, and the next agent reuses the same maps:
 * it converges them on the desired state with batch operations instead of starting empty.
 */
import { DropReason, MapName, TcDatapath, WEFT_VXLAN_MAC, flowTableSizes, tcAttach, type CarryOutcome, type PolicyKey, type TcDirection } from "@weft/bpf";
import type { NodePolicyRecord, PeerRecord } from "@weft/protocol";
import type { Logger } from "pino";
import { DatapathError } from "../errors.js";
import { ifindexOf, linkState } from "../net/links.js";
import type { CommandRunner } from "../exec/runner.js";
import { desiredIpcache, desiredPolicy, desiredTunnels, wantsVxlan } from "./desired.js";
import { sameFields, syncMap, type SyncResult } from "./sync.js";

export interface DatapathOptions {
  pinDir: string;
  /** Flows tracked at once: sizes the tables that grow with traffic (flowTableSizes) when they are created. */
  flowTableEntries: number;
  vxlanInterface: string;
  vxlanPort: number;
  /** MTU of the VXLAN device (underlay MTU minus 50). */
  vxlanMtu?: number;
  run: CommandRunner;
  log: Logger;
}

/** Counters of one identity pair. */
export interface FlowCounters {
  srcId: number;
  dstId: number;
  packets: bigint;
  bytes: bigint;
  /** Dropped packets by reason name (policyDeny, defaultDeny, …); only reasons with drops. */
  drops: Record<string, bigint>;
}

/** Logs what carrying retired counters maps into their replacements did at an open (an upgrade's first start). */
export function logCarried(log: Pick<Logger, "info" | "warn">, carried: Readonly<Record<string, CarryOutcome>>): void {
  for (const [map, outcome] of Object.entries(carried)) {
    if ("failed" in outcome) log.warn({ map, err: outcome.failed }, "the counters of the map this version replaced were not carried over; they start again from zero");
    else log.info({ map, entries: outcome.carried }, "carried the counters of the map this version replaced into its replacement");
  }
}

/** How long a VXLAN device found as wanted is taken to still be so (a device deleted by hand comes back with the next peer set after that). */
const VXLAN_RECHECK_MS = 10_000;

const DROP_REASON_NAMES = Object.entries(DropReason).filter(([name]) => name !== "none") as [string, number][];

export class AgentDatapath {
  readonly #dp: TcDatapath;
  readonly #o: DatapathOptions;
  /** The VXLAN device last found (or made) as wanted, and when. */
  #vxlanChecked: { wanted: boolean; at: number } | undefined;

  private constructor(dp: TcDatapath, o: DatapathOptions) {
    this.#dp = dp;
    this.#o = o;
  }

  /** Loads the programs, reusing (or creating) the pinned maps. Needs root and a bpffs at the pin dir. */
  static open(o: DatapathOptions): AgentDatapath {
    try {
      const dp = TcDatapath.open({ pinDir: o.pinDir, maxEntries: flowTableSizes(o.flowTableEntries) });
      logCarried(o.log, dp.carried);
      const pinned = dp.map(MapName.conntrack).info.maxEntries;
      if (pinned !== o.flowTableEntries) o.log.info({ flowTableEntries: o.flowTableEntries, pinned }, "the pinned flow tables keep their size (and the flows they track); datapath.flowTableEntries applies when they are next created (a reboot, weft down)");
      return new AgentDatapath(dp, o);
    } catch (err) {
      throw new DatapathError(`cannot load the eBPF datapath pinned at ${o.pinDir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Enforces policy on traffic arriving through the WireGuard interface; notes what leaves it so replies get back in. */
  async attachOverlay(ifname: string): Promise<void> {
    const ifindex = await ifindexOf(this.#o.run, ifname);
    this.#attach(ifname, ifindex, "egress", this.#dp.progOverlayOut);
    this.#attach(ifname, ifindex, "ingress", this.#dp.progOverlayIn);
  }

  /**
   * Registers the workload's one source address (anything else it sends is dropped as spoofed),
   * then puts encapsulation on the way out of it and policy on the way in. Returns the veth's ifindex.
   */
  async attachWorkload(hostIfname: string, workload: { address: string; identity: number }): Promise<number> {
    const ifindex = await ifindexOf(this.#o.run, hostIfname);
    this.#dp.endpoints.set(ifindex, { addr: workload.address, identity: workload.identity });
    this.#attach(hostIfname, ifindex, "ingress", this.#dp.progFromWorkload);
    this.#attach(hostIfname, ifindex, "egress", this.#dp.progToWorkload);
    return ifindex;
  }

  /** Forgets the endpoints of veths that are not in `ifindexes` (workloads removed). */
  retainEndpoints(ifindexes: readonly number[]): SyncResult {
    const keep = new Set(ifindexes);
    const desired = new Map([...this.#dp.endpoints.entries()].filter(([k]) => keep.has(k)).map(([k, v]) => [String(k), [k, v] as const]));
    return syncMap(this.#dp.endpoints, desired, (k) => String(k), sameFields);
  }

  /**
   * Converges the ipcache and the same-site tunnels on the peer set (which includes this node's
   * own record). Creates the VXLAN device when this node's site allows plaintext, removes it when
   * it no longer does.
   */
  async applyPeers(selfId: string, peers: readonly PeerRecord[]): Promise<{ ipcache: SyncResult; tunnels: SyncResult; sources: SyncResult }> {
    const ipcache = new Map([...desiredIpcache(peers)].map(([cidr, identity]) => [cidr, [prefixKey(cidr), { identity }] as const]));
    const ipcacheResult = syncMap(this.#dp.ipcache, ipcache, (k) => `${k.addr}/${k.prefixlen}`, sameFields);

    const vxlan = wantsVxlan(selfId, peers);
    await this.#ensureVxlan(vxlan);
    const t = desiredTunnels(selfId, peers);
    const tunnels = new Map([...t.tunnels].map(([cidr, remote]) => [cidr, [prefixKey(cidr), { remote }] as const]));
    const sources = new Map([...t.sources].map((addr) => [addr, [addr, {}] as const]));
    // Sources first: a tunnel must never send to a peer whose VXLAN we would not accept back.
    const sourcesResult = syncMap(this.#dp.tunnelPeers, sources, (k) => k, sameFields);
    const tunnelsResult = syncMap(this.#dp.tunnels, tunnels, (k) => `${k.addr}/${k.prefixlen}`, sameFields);
    return { ipcache: ipcacheResult, tunnels: tunnelsResult, sources: sourcesResult };
  }

  /** Converges the policy maps on the node's compiled policy (null: no policy for this node). */
  applyPolicy(record: NodePolicyRecord | null): { policy: SyncResult; defaultDeny: SyncResult } {
    const want = desiredPolicy(record);
    const keyOf = (k: PolicyKey) => `${k.srcId}/${k.dstId}/${k.proto}/${k.port}/${k.portBits}`;
    const entries = new Map(
      want.entries.map((e) => {
        const key: PolicyKey = { srcId: e.srcId, dstId: e.dstId, proto: e.proto, port: e.port, portBits: e.portBits };
        return [keyOf(key), [key, { verdict: e.verdict }] as const];
      }),
    );
    const defaults = new Map(want.defaultDeny.map((id) => [String(id), [id, { defaultDeny: true }] as const]));
    // Allows and denies before default-deny flags, so a newly policed identity never loses traffic its allows cover.
    const policy = syncMap(this.#dp.policy, entries, keyOf, sameFields);
    const defaultDeny = syncMap(this.#dp.policyDefault, defaults, (k) => String(k), sameFields);
    return { policy, defaultDeny };
  }

  /** Unpins maps this build replaced (the old per-port policy hash map), once the new ones are filled and attached. */
  removeRetiredPins(): string[] {
    return this.#dp.removeRetiredPins();
  }

  /** Every identity pair's counters. */
  flows(): FlowCounters[] {
    return readFlows(this.#dp);
  }

  /** Releases this process's handles; pinned maps and attached programs keep enforcing. */
  close(): void {
    this.#dp.close();
  }

  #attach(ifname: string, ifindex: number, direction: TcDirection, prog: TcDatapath["progOverlayIn"]): void {
    try {
      tcAttach(prog, { ifindex, direction });
    } catch (err) {
      throw new DatapathError(`cannot attach ${prog.name} to ${ifname} ${direction}: ${(err as Error).message}`, { cause: err, retryable: true });
    }
  }

  /**
   * The VXLAN device present, up, with weft_vxlan_in on its ingress and its ifindex in the config —
   * or absent. Called with every peer set: one `ip -json link show` when nothing is to change, and
   * none when the device was found as wanted less than VXLAN_RECHECK_MS ago (an agent's first peer
   * sets come a few hundred milliseconds apart, each one a command on a machine starting up).
   */
  async #ensureVxlan(wanted: boolean): Promise<void> {
    if (this.#vxlanChecked?.wanted === wanted && Date.now() - this.#vxlanChecked.at < VXLAN_RECHECK_MS) return;
    await this.#convergeVxlan(wanted);
    this.#vxlanChecked = { wanted, at: Date.now() };
  }

  async #convergeVxlan(wanted: boolean): Promise<void> {
    const { vxlanInterface: name, vxlanPort: port, run, log } = this.#o;
    let link = await linkState(run, name);
    if (!wanted) {
      if (link) {
        this.#dp.config.set(0, { vxlanIfindex: 0 });
        await run.run(["ip", "link", "del", name]);
        log.info({ device: name }, "same-site encapsulation off: VXLAN device removed");
      }
      return;
    }
    if (!link) {
      await run.run(["ip", "link", "add", name, "address", WEFT_VXLAN_MAC, "mtu", String(this.#o.vxlanMtu ?? 1450), "type", "vxlan", "external", "dstport", String(port)]);
      // Decapsulated packets come from a remote workload whose route points into WireGuard.
      await run.run(["sysctl", "-q", "-w", `net.ipv4.conf.${name}.rp_filter=0`]);
      const all = (await run.run(["sysctl", "-n", "net.ipv4.conf.all.rp_filter"]).catch(() => ({ stdout: "" }))).stdout.trim();
      if (all === "1") log.warn({ device: name }, "net.ipv4.conf.all.rp_filter is 1 (strict): the kernel drops decapsulated same-site workload traffic; set it to 2 (loose) or 0");
      log.info({ device: name, port }, "same-site encapsulation on: VXLAN device created");
    }
    if (!link?.up) {
      await run.run(["ip", "link", "set", name, "up"]);
      link = { ifindex: link?.ifindex ?? (await ifindexOf(run, name)), up: true };
    }
    this.#attach(name, link.ifindex, "ingress", this.#dp.progVxlanIn);
    if (this.#dp.config.get(0)?.vxlanIfindex !== link.ifindex) this.#dp.config.set(0, { vxlanIfindex: link.ifindex });
  }
}

/** The counters of every identity pair in a datapath (live or opened from pins). */
export function readFlows(dp: Pick<TcDatapath, "counters">): FlowCounters[] {
  const out: FlowCounters[] = [];
  for (const [key, total] of dp.counters.entries()) {
    const drops: Record<string, bigint> = {};
    for (const [name, code] of DROP_REASON_NAMES) {
      const n = total.drops[code] ?? 0n;
      if (n > 0n) drops[name] = n;
    }
    out.push({ srcId: key.srcId, dstId: key.dstId, packets: total.packets, bytes: total.bytes, drops });
  }
  return out.sort((a, b) => a.srcId - b.srcId || a.dstId - b.dstId);
}

function prefixKey(cidr: string): { addr: string; prefixlen: number } {
  const [addr, len] = cidr.split("/");
  return { addr: addr ?? "", prefixlen: Number(len ?? 32) };
}
