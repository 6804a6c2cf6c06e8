/** Typed errors for libbpf calls: the operation, the errno and its name, and the cause. */
import { constants } from "node:os";

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The name of an errno number (`ENOENT`), or `E<n>` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** A libbpf or bpf(2) call failed. `errno` is positive (libbpf returns -errno). */
export class BpfError extends Error {
  override readonly name: string = "BpfError";
  readonly errno: number;
  readonly code: string;
  readonly op: string;

  constructor(op: string, errno: number, options?: { cause?: unknown; detail?: string }) {
    const code = errnoName(errno);
    super(`${op}: ${code} (errno ${errno})${options?.detail ? `: ${options.detail}` : ""}`, { cause: options?.cause });
    this.op = op;
    this.errno = errno;
    this.code = code;
  }
}

/** The system libbpf could not be loaded (package `libbpf1` missing, or not Linux). */
export class LibbpfUnavailableError extends Error {
  override readonly name = "LibbpfUnavailableError";
  constructor(cause: unknown) {
    super(`libbpf.so.1 could not be loaded (install Debian package libbpf1): ${String(cause)}`, { cause });
  }
}

/** A key or value buffer does not have the size the map was created with. */
export class BpfSizeError extends Error {
  override readonly name = "BpfSizeError";
  constructor(op: string, what: "key" | "value", got: number, want: number) {
    super(`${op}: ${what} is ${got} bytes, the map wants ${want}`);
  }
}

/** What a map looks like (type, sizes, max entries, flags), to tell why a pinned one does not fit. */
export interface MapShape {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

/**
 * A map pinned by an earlier version has another type, key or value size, max entries or flags
 * than this build's: libbpf cannot reuse it. Remove the pin or open with
 * `onIncompatible: "replace"`; the old map's entries are lost either way (the agent refills them).
 */
export class BpfPinIncompatibleError extends BpfError {
  override readonly name = "BpfPinIncompatibleError";
  readonly mapName: string;
  readonly pinPath: string;
  readonly pinned: MapShape;
  readonly wanted: MapShape;

  constructor(mapName: string, pinPath: string, pinned: MapShape, wanted: MapShape) {
    const diffs = (Object.keys(wanted) as (keyof MapShape)[])
      .filter((k) => pinned[k] !== wanted[k])
      .map((k) => `${k} ${pinned[k]}, this build wants ${wanted[k]}`);
    super(`reuse pinned map ${mapName}`, 22 /* EINVAL */, {
      detail:
        `${pinPath} does not fit this build (${diffs.join("; ")}): ` +
        `remove it (rm ${pinPath}) or open with onIncompatible: "replace"; its entries are lost either way`,
    });
    this.mapName = mapName;
    this.pinPath = pinPath;
    this.pinned = pinned;
    this.wanted = wanted;
  }
}

/** A pin directory is not on a bpf filesystem (bpffs), so nothing can be pinned there. */
export class BpfFsError extends Error {
  override readonly name = "BpfFsError";
  /** The existing directory that is not bpffs (the pin directory or its nearest existing parent). */
  readonly path: string;

  constructor(path: string, fsType: number) {
    super(`${path} is not a bpf filesystem (filesystem type 0x${fsType.toString(16)}): mount -t bpf bpf ${path}`);
    this.path = path;
  }
}
