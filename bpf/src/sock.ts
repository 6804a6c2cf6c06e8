/**
 * The socket datapath of services: the cgroup programs of bpf/progs/weft_sock_*.c (connect4,
 * sendmsg4, recvmsg4, getpeername4, sockops), loaded with the lb maps of lib/lb.h shared between
 * them and, through their pins, with the tc programs' tc fallback (lib/lb_nat.h).
 *
 *   SockDatapath.open({ pinDir })  maps reused from (or pinned at) <pinDir>/maps/<name>. The agent.
 *   SockDatapath.load()            nothing pinned; maps shared in memory. Tests.
 *   attach(cgroupPath)             every program on a cgroup v2 directory, in "multi" mode (other
 *                                  programs of the cgroup keep running), replacing the programs of
 *                                  an earlier load (same names) without a gap: the new ones are
 *                                  attached first, then the old ones detached. Both see the same
 *                                  pinned maps, and a connection the first rewrote is no longer
 *                                  addressed to a VIP when the second sees it.
 */
import { cgroupAttach, cgroupDetach, cgroupPrograms, type CgroupAttachType, type CgroupAttachment } from "./cgroup.js";
import { loadSharingMaps, openWithPinnedMaps, sharedMap, type LoadOptions, type OpenOptions, type PinOutcome } from "./datapath.js";
import {
  LbMapName,
  lbDropsValueCodec,
  lbFlowKeyCodec,
  lbKeyCodec,
  lbNatValueCodec,
  lbRateKeyCodec,
  lbServiceCodec,
  lbSourceValueCodec,
  lbStatsKeyCodec,
  lbStatsValueCodec,
  lbVipValueCodec,
  netnsCookieCodec,
  type LbBackend,
  type LbDropsValue,
  type LbFlowKey,
  type LbKey,
  type LbRateKey,
  type LbService,
  type LbSourceValue,
  type LbStatsKey,
  type LbStatsValue,
  type LbVipValue,
} from "./lb-layout.js";
import { ipv4AddrCodec } from "./layout.js";
import type { CarryOutcome } from "./carry.js";
import { BpfMap, TypedMap } from "./map.js";
import { BpfObject, type BpfProgram } from "./object.js";
import { ensurePinDir, type PinLayout } from "./pin.js";

/** The socket programs, one entry file and object each, with where they attach. */
export const SOCK_PROGRAMS: readonly { name: string; attachType: CgroupAttachType }[] = [
  { name: "weft_sock_connect4", attachType: "connect4" },
  { name: "weft_sock_sendmsg4", attachType: "sendmsg4" },
  { name: "weft_sock_recvmsg4", attachType: "recvmsg4" },
  { name: "weft_sock_getpeername4", attachType: "getpeername4" },
  { name: "weft_sock_ops", attachType: "sock_ops" },
];

export class SockDatapath {
  readonly objects: readonly BpfObject[];
  readonly pins: PinLayout | undefined;
  readonly pinOutcome: Readonly<Record<string, PinOutcome>>;
  /** Per map that replaced a retired counters map at this open: the totals carried over, or why not. Empty for load(). */
  readonly carried: Readonly<Record<string, CarryOutcome>>;

  /** VIPs: a quick "is this a service address" before anything else. */
  readonly vips: TypedMap<string, LbVipValue>;
  /** Network namespace cookie → identity of the sockets in it. */
  readonly sources: TypedMap<bigint, LbSourceValue>;
  /** Service port as one source identity sees it → its backends and selection table. */
  readonly services: TypedMap<LbKey, LbService>;
  readonly stats: TypedMap<LbStatsKey, LbStatsValue>;
  /** Refused new connections per (source identity, VIP), one value for all CPUs. */
  readonly drops: TypedMap<LbRateKey, LbDropsValue>;
  /** tc fallback NAT (read by tests). */
  readonly nat: TypedMap<LbFlowKey, LbBackend>;
  readonly rnat: TypedMap<LbFlowKey, LbBackend>;

  private constructor(objects: BpfObject[], pins: PinLayout | undefined, pinOutcome: Record<string, PinOutcome>, carried: Record<string, CarryOutcome> = {}) {
    this.objects = objects;
    this.pins = pins;
    this.pinOutcome = pinOutcome;
    this.carried = carried;
    this.vips = new TypedMap(this.map(LbMapName.vips), ipv4AddrCodec, lbVipValueCodec);
    this.sources = new TypedMap(this.map(LbMapName.sources), netnsCookieCodec, lbSourceValueCodec);
    this.services = new TypedMap(this.map(LbMapName.services), lbKeyCodec, lbServiceCodec);
    this.stats = new TypedMap(this.map(LbMapName.stats), lbStatsKeyCodec, lbStatsValueCodec);
    this.drops = new TypedMap(this.map(LbMapName.drops), lbRateKeyCodec, lbDropsValueCodec);
    this.nat = new TypedMap(this.map(LbMapName.nat), lbFlowKeyCodec, lbNatValueCodec);
    this.rnat = new TypedMap(this.map(LbMapName.rnat), lbFlowKeyCodec, lbNatValueCodec);
  }

  /** A raw map by name, from the first object that declares it (all objects share it). */
  map(name: string): BpfMap {
    return sharedMap(this.objects, name);
  }

  program(name: string): BpfProgram {
    const i = SOCK_PROGRAMS.findIndex((p) => p.name === name);
    const o = this.objects[i];
    if (!o) throw new Error(`no socket program ${name}`);
    return o.program(name);
  }

  /** Loads the objects without pinning (maps shared in memory between them). Needs root. */
  static load(options: LoadOptions = {}): SockDatapath {
    return new SockDatapath(loadSharingMaps(SOCK_PROGRAMS.map((p) => p.name), options.objectDir), undefined, {});
  }

  /**
   * Loads the objects with every map pinned at `<pinDir>/maps/<name>` (the same pins TcDatapath
   * uses: the lb maps are shared with the tc fallback). A pinned map that does not fit throws
   * BpfPinIncompatibleError, or is replaced with onIncompatible "replace".
   */
  static open(options: OpenOptions): SockDatapath {
    const pins = ensurePinDir(options.pinDir);
    const { objects, outcome, carried } = openWithPinnedMaps(SOCK_PROGRAMS.map((p) => p.name), options.objectDir, pins.maps, options.onIncompatible ?? "error", options.maxEntries);
    return new SockDatapath(objects, pins, outcome, carried);
  }

  /**
   * Attaches every program to the cgroup v2 directory `cgroupPath` ("multi" mode), then detaches
   * programs of the same names attached there before (an earlier agent's). Returns the attachments.
   */
  attach(cgroupPath: string): CgroupAttachment[] {
    const attached: CgroupAttachment[] = [];
    for (const [i, p] of SOCK_PROGRAMS.entries()) {
      const prog = this.objects[i]!.program(p.name);
      const before = cgroupPrograms(cgroupPath, p.attachType).filter((q) => q.name === kernelName(p.name));
      const a = cgroupAttach(prog, { cgroupPath, attachType: p.attachType, flags: "multi" });
      attached.push(a);
      for (const old of before) {
        if (old.id === a.progId) continue;
        cgroupDetach({ cgroupPath, attachType: p.attachType, flags: "multi", progName: p.name, progId: old.id });
      }
    }
    return attached;
  }

  /** Detaches every program of these names from `cgroupPath` (this load's and earlier ones); returns how many. */
  static detachAll(cgroupPath: string): number {
    let n = 0;
    for (const p of SOCK_PROGRAMS) {
      for (const q of cgroupPrograms(cgroupPath, p.attachType)) {
        if (q.name !== kernelName(p.name)) continue;
        if (cgroupDetach({ cgroupPath, attachType: p.attachType, flags: "multi", progName: p.name, progId: q.id })) n++;
      }
    }
    return n;
  }

  close(): void {
    for (const o of this.objects) o.close();
  }
}

/** The kernel keeps 15 characters of a program's name. */
function kernelName(name: string): string {
  return name.slice(0, 15);
}
