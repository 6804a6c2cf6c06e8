/**
 * @weft/bpf: libbpf-ts, a TypeScript binding to the system libbpf.so.1 (koffi FFI), and the
 * typed view of Weft's eBPF datapath (bpf/progs). See bpf/README.md.
 */
export { BpfError, BpfFsError, BpfPinIncompatibleError, BpfSizeError, LibbpfUnavailableError, errnoName, type MapShape } from "./errors.js";
export { BpfObject, BpfProgram, type MapDef } from "./object.js";
export {
  BpfMap,
  MapFlag,
  MapType,
  PerCpuMap,
  TypedMap,
  UpdateFlag,
  mapInfoByFd,
  numPossibleCpus,
  type BatchChunk,
  type LookupBatchOptions,
  type MapCreateOptions,
  type MapInfo,
} from "./map.js";
export { testRun, type TestRunOptions, type TestRunResult } from "./testrun.js";
export { tcAttach, tcDetach, tcDestroyHook, type TcAttachOptions, type TcAttachment, type TcDirection } from "./tc.js";
export {
  BpfCgroupPathError,
  CGROUP2_SUPER_MAGIC,
  CGROUP_ATTACH_TYPE,
  cgroupAttach,
  cgroupDetach,
  cgroupPrograms,
  cgroupQuery,
  type CgroupProgram,
  type CgroupAttachMode,
  type CgroupAttachOptions,
  type CgroupAttachType,
  type CgroupAttachment,
} from "./cgroup.js";
export { DATAPATH_PROGRAMS, TcDatapath, checkPin, objectPath, type LoadOptions, type MapSizes, type OpenOptions, type PinOutcome } from "./datapath.js";
export { DEFAULT_FLOW_TABLE_ENTRIES, MAX_FLOW_TABLE_ENTRIES, MIN_FLOW_TABLE_ENTRIES } from "./flow-table-limits.js";
export { flowTableSizes } from "./sizes.js";
export { carryPerCpuCounters, carryRetiredCounters, type CarryOutcome } from "./carry.js";
export { BPF_FS_MAGIC, DEFAULT_PIN_DIR, ensurePinDir, isBpffs, pinLayout, removePins, unpinAll, type PinLayout } from "./pin.js";
export { internetChecksum, ipv4Frame, ipv4Packet, macAt, type PacketSpec } from "./packet.js";
export * from "./layout.js";
export * from "./lb-layout.js";
export { SOCK_PROGRAMS, SockDatapath } from "./sock.js";
export { netnsCookie, socketInNetns } from "./netns.js";
