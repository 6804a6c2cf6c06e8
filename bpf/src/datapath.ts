/**
 * The tc datapath: the four entry objects (bpf/dist/weft_*.o) loaded with shared maps, the maps
 * behind their typed codecs, and pinning so that an agent restart keeps enforcement and entries.
 *
 *   TcDatapath.open({ pinDir })  maps reused from (or pinned at) <pinDir>/maps/<name>, programs
 *                                pinned at <pinDir>/progs/<name>. What the agent uses.
 *   TcDatapath.load()            nothing pinned; maps shared between the objects in memory. Tests.
 */
import { existsSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BpfPinIncompatibleError, type MapShape } from "./errors.js";
import {
  MapName,
  ProgramName,
  RETIRED_MAPS,
  configValueCodec,
  endpointValueCodec,
  countersKeyCodec,
  countersValueCodec,
  identityKeyCodec,
  ipcacheKeyCodec,
  ipcacheValueCodec,
  ipv4AddrCodec,
  policyDefaultValueCodec,
  policyKeyCodec,
  policyValueCodec,
  tunnelKeyCodec,
  tunnelPeerValueCodec,
  tunnelValueCodec,
  type ConfigValue,
  type EndpointValue,
  type CountersKey,
  type CountersValue,
  type IpcacheKey,
  type IpcacheValue,
  type PolicyDefaultValue,
  type PolicyKey,
  type PolicyValue,
  type ProgramNameValue,
  type TunnelKey,
  type TunnelPeerValue,
  type TunnelValue,
} from "./layout.js";
import { carryRetiredCounters, type CarryOutcome } from "./carry.js";
import { BpfMap, TypedMap } from "./map.js";
import { BpfObject, type BpfProgram, type MapDef } from "./object.js";
import { ensurePinDir, pinReplace, type PinLayout } from "./pin.js";

/** Where build.sh puts the compiled objects (bpf/dist), from src or dist alike. */
export function objectPath(name: string, objectDir?: string): string {
  if (objectDir) return join(objectDir, `${name}.o`);
  return fileURLToPath(new URL(`../dist/${name}.o`, import.meta.url));
}

/**
 * Loads the objects `names` (in `objectDir`) as one datapath: a map declared by several objects is
 * created by the first and reused by the others. Closes what it opened when one fails.
 */
export function loadSharingMaps(names: readonly string[], objectDir?: string): BpfObject[] {
  const objects: BpfObject[] = [];
  const shared = new Map<string, BpfMap>();
  try {
    for (const name of names) {
      const o = BpfObject.open(objectPath(name, objectDir));
      objects.push(o);
      const defs = o.mapDefs();
      for (const m of defs) {
        const known = shared.get(m.name);
        if (known) o.reuseMap(m.name, known);
      }
      o.load();
      for (const m of defs) if (!shared.has(m.name)) shared.set(m.name, o.map(m.name));
    }
    return objects;
  } catch (err) {
    for (const o of objects) o.close();
    throw err;
  }
}

/**
 * Loads the objects `names` with every map pinned at `<mapsDir>/<name>` (checkPin decides reuse,
 * creation or replacement, once per map name; a map named in `maxEntries` is created with that
 * many entries, or keeps the size of its pin, see sizeToCreate); returns them with each map's outcome and what
 * carrying a retired counters map's totals did (carryRetiredCounters). Closes what it opened when
 * one fails.
 */
export function openWithPinnedMaps(
  names: readonly string[],
  objectDir: string | undefined,
  mapsDir: string,
  onIncompatible: "error" | "replace",
  maxEntries: MapSizes = {},
): { objects: BpfObject[]; outcome: Record<string, PinOutcome>; carried: Record<string, CarryOutcome> } {
  const outcome: Record<string, PinOutcome> = {};
  const sizes = new Map<string, number>();
  const objects: BpfObject[] = [];
  try {
    for (const name of names) {
      const o = BpfObject.open(objectPath(name, objectDir));
      objects.push(o);
      for (const declared of o.mapDefs()) {
        const path = join(mapsDir, declared.name);
        const wanted = maxEntries[declared.name];
        let m = declared;
        if (wanted !== undefined) {
          if (!sizes.has(m.name)) sizes.set(m.name, sizeToCreate(m, wanted, path));
          m = { ...m, maxEntries: sizes.get(m.name)! };
          if (m.maxEntries !== declared.maxEntries) o.setMaxEntries(m.name, m.maxEntries);
        }
        if (!(m.name in outcome)) outcome[m.name] = checkPin(m, path, onIncompatible);
        o.setPinPath(m.name, path);
      }
      o.load();
    }
    return { objects, outcome, carried: carryRetiredCounters(mapsDir, outcome, (map) => sharedMap(objects, map)) };
  } catch (err) {
    for (const o of objects) o.close();
    throw err;
  }
}

/** A map by name, from the first of `objects` that declares it (objects loaded together share their maps). */
export function sharedMap(objects: readonly BpfObject[], name: string): BpfMap {
  const o = objects.find((x) => x.mapDefs().some((m) => m.name === name));
  if (!o) throw new Error(`no object declares map ${name}`);
  return o.map(name);
}

/** The entry objects, in load order: one per program, named like it. */
export const DATAPATH_PROGRAMS: readonly ProgramNameValue[] = [ProgramName.overlayIn, ProgramName.overlayOut, ProgramName.toWorkload, ProgramName.fromWorkload, ProgramName.vxlanIn];

export interface LoadOptions {
  /** Directory holding weft_overlay_in.o, … (default bpf/dist, where build.sh writes them). */
  objectDir?: string;
}

export interface OpenOptions extends LoadOptions {
  /** Pin directory on a bpffs, e.g. /sys/fs/bpf/weft; created (mkdir -p) when missing. */
  pinDir: string;
  /**
   * A pinned map whose type, key/value size, max entries or flags differ from this build's
   * (its layout changed across versions): "error" (default) throws BpfPinIncompatibleError
   * naming it; "replace" unpins it and pins a new, empty map (programs still attached keep the
   * old one until they are replaced).
   */
  onIncompatible?: "error" | "replace";
  /**
   * Entries to create maps with, by name (e.g. flowTableSizes()); a map already pinned keeps its
   * size. Maps not named keep the size their object declares.
   */
  maxEntries?: MapSizes;
}

/** What open() did with each map's pin. */
export type PinOutcome = "reused" | "created" | "replaced";

const shape = (m: MapDef): MapShape => ({ type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags });
const sameShape = (a: MapShape, b: MapShape) => (Object.keys(a) as (keyof MapShape)[]).every((k) => a[k] === b[k]);

export class TcDatapath {
  readonly objects: readonly BpfObject[];
  /** The pin layout when opened with a pinDir; undefined for load(). */
  readonly pins: PinLayout | undefined;
  /** Per map name: whether open() reused its pin, created it, or replaced an incompatible one. Empty for load(). */
  readonly pinOutcome: Readonly<Record<string, PinOutcome>>;
  /** Per map that replaced a retired counters map at this open: the totals carried over, or why not. Empty for load(). */
  readonly carried: Readonly<Record<string, CarryOutcome>>;

  /** weft0 (WireGuard, L3) ingress. */
  readonly progOverlayIn: BpfProgram;
  /** weft0 egress: conntrack of sent flows, so replies pass policy. */
  readonly progOverlayOut: BpfProgram;
  /** Workload host-side veth egress (into the workload). */
  readonly progToWorkload: BpfProgram;
  /** Workload host-side veth ingress (out of the workload): VXLAN encapsulation. */
  readonly progFromWorkload: BpfProgram;
  /** VXLAN collect_md device ingress. */
  readonly progVxlanIn: BpfProgram;

  readonly ipcache: TypedMap<IpcacheKey, IpcacheValue>;
  readonly policy: TypedMap<PolicyKey, PolicyValue>;
  /** Key: destination identity. */
  readonly policyDefault: TypedMap<number, PolicyDefaultValue>;
  /** Per identity pair, one value for all CPUs. */
  readonly counters: TypedMap<CountersKey, CountersValue>;
  /** Same-site peers' workload prefixes that accept VXLAN -> the peer's underlay address. */
  readonly tunnels: TypedMap<TunnelKey, TunnelValue>;
  /** Key: underlay IPv4 of a same-site peer allowed to send VXLAN here. */
  readonly tunnelPeers: TypedMap<string, TunnelPeerValue>;
  /** Key: always 0. Prefer getConfig()/setConfig(). */
  readonly config: TypedMap<number, ConfigValue>;
  /** Key: ifindex of a workload's host-side veth -> the source address it may use. */
  readonly endpoints: TypedMap<number, EndpointValue>;

  private constructor(objects: BpfObject[], pins: PinLayout | undefined, pinOutcome: Record<string, PinOutcome>, carried: Record<string, CarryOutcome> = {}) {
    this.objects = objects;
    this.pins = pins;
    this.pinOutcome = pinOutcome;
    this.carried = carried;
    const prog = (name: ProgramNameValue) => this.#objectOf(name).program(name);
    this.progOverlayIn = prog(ProgramName.overlayIn);
    this.progOverlayOut = prog(ProgramName.overlayOut);
    this.progToWorkload = prog(ProgramName.toWorkload);
    this.progFromWorkload = prog(ProgramName.fromWorkload);
    this.progVxlanIn = prog(ProgramName.vxlanIn);
    this.ipcache = new TypedMap(this.map(MapName.ipcache), ipcacheKeyCodec, ipcacheValueCodec);
    this.policy = new TypedMap(this.map(MapName.policy), policyKeyCodec, policyValueCodec);
    this.policyDefault = new TypedMap(this.map(MapName.policyDefault), identityKeyCodec, policyDefaultValueCodec);
    this.counters = new TypedMap(this.map(MapName.counters), countersKeyCodec, countersValueCodec);
    this.tunnels = new TypedMap(this.map(MapName.tunnels), tunnelKeyCodec, tunnelValueCodec);
    this.tunnelPeers = new TypedMap(this.map(MapName.tunnelPeers), ipv4AddrCodec, tunnelPeerValueCodec);
    this.config = new TypedMap(this.map(MapName.config), identityKeyCodec, configValueCodec);
    this.endpoints = new TypedMap(this.map(MapName.endpoints), identityKeyCodec, endpointValueCodec);
  }

  #objectOf(program: ProgramNameValue): BpfObject {
    const i = DATAPATH_PROGRAMS.indexOf(program);
    const o = this.objects[i];
    if (!o) throw new Error(`no object for program ${program}`);
    return o;
  }

  /** A raw map by name, from the first object that declares it (all objects share it). */
  map(name: string): BpfMap {
    return sharedMap(this.objects, name);
  }

  /** A program by name. */
  program(name: ProgramNameValue): BpfProgram {
    return this.#objectOf(name).program(name);
  }

  /** Loads the objects without pinning (maps shared in memory between them). Needs root (CAP_BPF, CAP_NET_ADMIN). */
  static load(options: LoadOptions = {}): TcDatapath {
    return new TcDatapath(loadSharingMaps(DATAPATH_PROGRAMS, options.objectDir), undefined, {});
  }

  /**
   * Loads the objects with every map pinned at `<pinDir>/maps/<name>`: a compatible pinned map is
   * reused with its entries (an agent restart keeps enforcement and counters), a missing one is
   * created and pinned, an incompatible one throws BpfPinIncompatibleError (or is replaced, see
   * OpenOptions.onIncompatible). Programs are pinned at `<pinDir>/progs/<name>`, replacing older
   * pins. Attachments are not touched: attach the new programs with tcAttach (which replaces
   * the filter in place, with no gap). Throws BpfFsError when pinDir is not on a bpffs.
   */
  static open(options: OpenOptions): TcDatapath {
    const pins = ensurePinDir(options.pinDir);
    const { objects, outcome, carried } = openWithPinnedMaps(DATAPATH_PROGRAMS, options.objectDir, pins.maps, options.onIncompatible ?? "error", options.maxEntries);
    try {
      for (const [i, name] of DATAPATH_PROGRAMS.entries()) {
        const o = objects[i];
        if (o) pinReplace(o.program(name).fd, join(pins.progs, name), `program ${name}`);
      }
      return new TcDatapath(objects, pins, outcome, carried);
    } catch (err) {
      for (const o of objects) o.close();
      throw err;
    }
  }

  /** The host config (weft_config[0]). */
  getConfig(): ConfigValue {
    return this.config.get(0) ?? { vxlanIfindex: 0 };
  }

  setConfig(value: ConfigValue): void {
    this.config.set(0, value);
  }

  /**
   * Unpins the maps earlier builds pinned and this one replaced (RETIRED_MAPS). Call it once the
   * replacements are filled and the new programs attached: programs still attached from before
   * keep their map until they are replaced, the pin is what would keep it forever. Returns the
   * names removed. No-op for load().
   */
  removeRetiredPins(): string[] {
    if (!this.pins) return [];
    const removed: string[] = [];
    for (const { name } of RETIRED_MAPS) {
      const path = join(this.pins.maps, name);
      if (!existsSync(path)) continue;
      unlinkSync(path);
      removed.push(name);
    }
    return removed;
  }

  /** Closes the objects: what is pinned or attached stays in the kernel, the rest is freed. */
  close(): void {
    for (const o of this.objects) o.close();
  }
}

/** Entries to create maps with, by map name (maps not named keep the size their object declares). */
export type MapSizes = Readonly<Partial<Record<string, number>>>;

/**
 * The size to open the map `def` with when `wanted` entries are asked for: a map already pinned
 * with only another size keeps its size (reused with its entries: an agent restart or upgrade
 * must not drop the flows it tracks), so a new size applies once the pin is gone (a reboot,
 * `weft down`); otherwise `wanted`.
 */
function sizeToCreate(def: MapDef, wanted: number, path: string): number {
  if (!existsSync(path)) return wanted;
  const pinned = BpfMap.fromPin(path);
  try {
    return sameShape(shape(pinned.info), shape({ ...def, maxEntries: pinned.info.maxEntries })) ? pinned.info.maxEntries : wanted;
  } finally {
    pinned.close();
  }
}

/** Decides what to do with the pin of one map before libbpf loads (and would reject a mismatch). */
export function checkPin(def: MapDef, path: string, onIncompatible: "error" | "replace"): PinOutcome {
  if (!existsSync(path)) return "created";
  const pinned = BpfMap.fromPin(path);
  try {
    if (sameShape(shape(pinned.info), shape(def))) return "reused";
    if (onIncompatible === "error") throw new BpfPinIncompatibleError(def.name, path, shape(pinned.info), shape(def));
  } finally {
    pinned.close();
  }
  unlinkSync(path);
  return "replaced";
}
