/**
 * The tc policy datapath (bpf/dist/weft_tc.o) with its maps behind their typed codecs.
 */
import { fileURLToPath } from "node:url";
import {
  MapName,
  countersKeyCodec,
  countersValueCodec,
  identityKeyCodec,
  ipcacheKeyCodec,
  ipcacheValueCodec,
  policyDefaultValueCodec,
  policyKeyCodec,
  policyValueCodec,
  type CountersKey,
  type CountersValue,
  type IpcacheKey,
  type IpcacheValue,
  type PolicyDefaultValue,
  type PolicyKey,
  type PolicyValue,
} from "./layout.js";
import { PerCpuMap, TypedMap } from "./map.js";
import { BpfObject, type BpfProgram } from "./object.js";

/** Where build.sh puts the compiled objects (bpf/dist), from src or dist alike. */
export function objectPath(name: string): string {
  return fileURLToPath(new URL(`../dist/${name}.o`, import.meta.url));
}

export class TcDatapath {
  readonly object: BpfObject;
  /** For devices with an Ethernet header (veth). */
  readonly progL2: BpfProgram;
  /** For L3 devices (weft0). */
  readonly progL3: BpfProgram;
  readonly ipcache: TypedMap<IpcacheKey, IpcacheValue>;
  readonly policy: TypedMap<PolicyKey, PolicyValue>;
  readonly policyDefault: TypedMap<number, PolicyDefaultValue>;
  readonly counters: PerCpuMap<CountersKey, CountersValue>;

  private constructor(object: BpfObject) {
    this.object = object;
    this.progL2 = object.program("weft_tc_l2");
    this.progL3 = object.program("weft_tc_l3");
    this.ipcache = new TypedMap(object.map(MapName.ipcache), ipcacheKeyCodec, ipcacheValueCodec);
    this.policy = new TypedMap(object.map(MapName.policy), policyKeyCodec, policyValueCodec);
    this.policyDefault = new TypedMap(object.map(MapName.policyDefault), identityKeyCodec, policyDefaultValueCodec);
    this.counters = new PerCpuMap(object.map(MapName.counters), countersKeyCodec, countersValueCodec);
  }

  /** Loads weft_tc.o (default: bpf/dist/weft_tc.o). Needs root (CAP_BPF, CAP_NET_ADMIN). */
  static load(path: string = objectPath("weft_tc")): TcDatapath {
    const object = BpfObject.load(path);
    try {
      return new TcDatapath(object);
    } catch (err) {
      object.close();
      throw err;
    }
  }

  close(): void {
    this.object.close();
  }
}
