/**
 * @weft/bpf: libbpf-ts, a TypeScript binding to the system libbpf.so.1 (koffi FFI), and the
 * typed view of Weft's eBPF datapath (bpf/progs). See bpf/README.md.
 */
export { BpfError, BpfSizeError, LibbpfUnavailableError, errnoName } from "./errors.js";
export { BpfObject, BpfProgram } from "./object.js";
export { BpfMap, PerCpuMap, TypedMap, UpdateFlag, mapInfoByFd, numPossibleCpus, type MapInfo } from "./map.js";
export { testRun, type TestRunOptions, type TestRunResult } from "./testrun.js";
export { tcAttach, tcDetach, tcDestroyHook, type TcAttachOptions, type TcAttachment, type TcDirection } from "./tc.js";
export { TcDatapath, objectPath } from "./datapath.js";
export { ipv4Frame, internetChecksum, type PacketSpec } from "./packet.js";
export * from "./layout.js";
