/** Typed errors for libbpf calls: the operation, the errno and its name, and the cause. */
import { constants } from "node:os";

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The name of an errno number (`ENOENT`), or `E<n>` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** A libbpf or bpf(2) call failed. `errno` is positive (libbpf returns -errno). */
export class BpfError extends Error {
  override readonly name = "BpfError";
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
