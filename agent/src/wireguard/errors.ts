/**
 * Typed errors of the WireGuard wrapper. One small class per condition, each carrying the
 * facts a caller needs (path, mode, interface) and the underlying `cause`; messages say what to
 * do about it. Callers branch on the class, never on message text. A failed `wg`/`ip` command
 * is the runner's `CommandError` (agent/src/exec/errors.ts).
 */

/** Base class of every error thrown by `agent/src/wireguard` (but InvalidKeyError, which comes with the keys from @weft/protocol). */
export class WireGuardError extends Error {
  override readonly name: string = "WireGuardError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A string is not a WireGuard key (standard base64 of exactly 32 bytes): defined with the keys in @weft/protocol. */
export { InvalidKeyError } from "@weft/protocol";

/** A private key file is readable or writable by group/others; refused until `chmod 600`. */
export class InsecureKeyFileError extends WireGuardError {
  override readonly name = "InsecureKeyFileError";
  readonly path: string;
  readonly mode: number;
  constructor(path: string, mode: number) {
    const octal = (mode & 0o777).toString(8).padStart(4, "0");
    super(
      `private key file ${path} has mode ${octal}: it must not be accessible by group or others; ` +
        `fix it with: chmod 600 ${path}`,
    );
    this.path = path;
    this.mode = mode;
  }
}

/** Neither the kernel module nor `wireguard-go` is available (or the forced one is missing). */
export class ImplementationNotFoundError extends WireGuardError {
  override readonly name = "ImplementationNotFoundError";
}

/** The interface could not be created, or a same-named link exists that is not WireGuard. */
export class InterfaceError extends WireGuardError {
  override readonly name = "InterfaceError";
  readonly iface: string;
  constructor(iface: string, message: string, options?: { cause?: unknown }) {
    super(`wireguard interface ${iface}: ${message}`, options);
    this.iface = iface;
  }
}

/** `wg` or `ip` printed something this module does not understand. */
export class OutputParseError extends WireGuardError {
  override readonly name = "OutputParseError";
}

/** The desired state is invalid (bad CIDR, bad key, duplicate peer or allowed IP). */
export class InvalidDesiredStateError extends WireGuardError {
  override readonly name = "InvalidDesiredStateError";
}

/** A userspace device's UAPI socket refused a change (`errno` other than 0) or a key could not be sent. */
export class UapiError extends WireGuardError {
  override readonly name = "UapiError";
}
