/**
 * Chooses the WireGuard implementation used to create an interface: the kernel module when
 * present (`/sys/module/wireguard`, or a probe `ip link add ... type wireguard` that can
 * autoload it), otherwise userspace `wireguard-go` from PATH. Can be forced either way.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import { ImplementationNotFoundError } from "./errors.js";
import type { CommandRunner } from "../exec/runner.js";

export type Implementation = "kernel" | "userspace";
export type ImplementationChoice = "auto" | Implementation;

export type Backend = { implementation: "kernel" } | { implementation: "userspace"; binary: string };

export interface DetectBackendOptions {
  implementation?: ImplementationChoice;
  /** Runs the kernel probe (in the right namespace). */
  runner: CommandRunner;
  /** `wireguard-go` binary name or path; default "wireguard-go" looked up on PATH. */
  wireguardGo?: string;
  /** Search path; default `process.env.PATH`. */
  path?: string;
  /** Where kernel modules appear; default "/sys/module". Tests point it elsewhere. */
  sysModuleDir?: string;
}

const INSTALL_HINT =
  "install the WireGuard kernel module (Linux >= 5.6, or `apt install wireguard`) " +
  "or the userspace implementation (`apt install wireguard-go`, or put wireguard-go on PATH)";

/** Detects (or validates the forced choice of) the implementation to create interfaces with. */
export async function detectBackend(options: DetectBackendOptions): Promise<Backend> {
  const choice = options.implementation ?? "auto";
  if (choice === "kernel") return { implementation: "kernel" };
  if (choice === "auto" && (await kernelAvailable(options))) return { implementation: "kernel" };
  const name = options.wireguardGo ?? "wireguard-go";
  const binary = await findExecutable(name, options.path ?? process.env["PATH"] ?? "");
  if (binary !== undefined) return { implementation: "userspace", binary };
  throw new ImplementationNotFoundError(
    choice === "userspace"
      ? `userspace WireGuard requested but ${name} was not found on PATH: install wireguard-go`
      : `no WireGuard implementation found: ${INSTALL_HINT}`,
  );
}

/** True if the kernel module is loaded, or can be (a probe link of type wireguard works). */
export async function kernelAvailable(options: Pick<DetectBackendOptions, "runner" | "sysModuleDir">): Promise<boolean> {
  if (await exists(join(options.sysModuleDir ?? "/sys/module", "wireguard"))) return true;
  const probe = `wgprobe${randomBytes(3).toString("hex")}`;
  try {
    await options.runner.run(["ip", "link", "add", probe, "type", "wireguard"]);
  } catch {
    return false;
  }
  await options.runner.run(["ip", "link", "del", probe]).catch(() => {});
  return true;
}

/**
 * Resolves `name` like a shell would: a name containing "/" is checked as is, a bare name is
 * searched in the absolute directories of `path` (relative PATH entries are ignored).
 */
export async function findExecutable(name: string, path: string): Promise<string | undefined> {
  const candidates = name.includes("/")
    ? [name]
    : path
        .split(delimiter)
        .filter((dir) => isAbsolute(dir))
        .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
