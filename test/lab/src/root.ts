/** The one privilege check: building or removing namespaces needs root. */
import { LabPermissionError } from "./errors.js";

/** Throws LabPermissionError unless running as root. `op` names the operation (`lab up`). */
export function requireRoot(op: string): void {
  if (process.getuid?.() !== 0) {
    throw new LabPermissionError(`${op}: needs root (network namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN)`);
  }
}
