/**
 * Brings one WireGuard interface to its desired link-level state without flapping it:
 * created only if missing (kernel link or a detached wireguard-go), never recreated or taken
 * down; private key, listen port, MTU, addresses, up flag and routes are each compared with the
 * actual value and changed only when they differ. Routes it installs carry protocol 87
 * ("weft"), so stale ones can be pruned without touching anybody else's.
 */
import { detectBackend, type ImplementationChoice } from "./backend.js";
import { canonicalAddress, canonicalPrefix } from "./cidr.js";
import { CommandError } from "../exec/errors.js";
import { InterfaceError } from "./errors.js";
import { ipBatch } from "../exec/ip-batch.js";
import { createCommandRunner, type CommandRunner } from "../exec/runner.js";
import { readPrivateKeyFile } from "./keys.js";
import { readLink, readRoutes, type LinkState, type RouteState } from "./link.js";
import { silentLogger, type Logger } from "./logger.js";
import type { DeviceDump } from "./dump.js";
import { readDevice } from "./peers.js";
import { startWireguardGo } from "./userspace.js";

/** Route protocol number marking routes this module owns (`ip route ... proto 87`). */
export const WEFT_ROUTE_PROTOCOL = 87;

/** Linux IFNAMSIZ - 1. */
const MAX_IFNAME = 15;

export interface InterfaceTarget {
  name: string;
  /** Run `ip`/`wg` inside this namespace (`ip netns exec NS`). */
  netns?: string;
  /** Overrides `netns`; lets tests substitute a fake. */
  runner?: CommandRunner;
  logger?: Logger;
}

export interface EnsureInterfaceOptions extends InterfaceTarget {
  /** How to create the interface if it is missing; default "auto". Ignored if it exists. */
  implementation?: ImplementationChoice;
  /** `wireguard-go` binary; default looked up on PATH. */
  wireguardGo?: string;
  /** Bound on waiting for wireguard-go's link and socket; default 5 s. */
  createTimeoutMs?: number;
  /** Default: leave as is (1420 when created). */
  mtu?: number;
  /** Default: leave as is (a random port when created). */
  listenPort?: number;
  /** File holding the base64 private key, mode 0600. */
  privateKeyPath: string;
  /** Interface addresses, e.g. "100.64.0.5/32". Others found on the interface are removed. */
  addresses: string[];
  /** Prefixes routed via the interface, e.g. "100.64.0.0/10". */
  routes: string[];
}

export type InterfaceAction =
  | { kind: "create"; implementation: "kernel" | "userspace"; elapsedMs: number }
  | { kind: "set-private-key" }
  | { kind: "set-listen-port"; listenPort: number }
  | { kind: "set-mtu"; mtu: number }
  | { kind: "add-address"; address: string }
  | { kind: "remove-address"; address: string }
  | { kind: "set-up" }
  | { kind: "replace-route"; route: string }
  | { kind: "remove-route"; route: string };

export interface EnsureInterfaceResult {
  changed: boolean;
  created: boolean;
  /** What was done, in order; empty when the interface already matched. */
  actions: InterfaceAction[];
  ifindex: number;
  publicKey: string;
}

const runnerFor = (t: InterfaceTarget): CommandRunner => t.runner ?? createCommandRunner({ netns: t.netns });

/** Validates an interface name the way the kernel will. */
export function assertInterfaceName(name: string): void {
  if (name.length === 0 || name.length > MAX_IFNAME || !/^[A-Za-z0-9_.-]+$/.test(name) || name === "." || name === "..") {
    throw new InterfaceError(name, `invalid interface name: 1-${MAX_IFNAME} characters of [A-Za-z0-9_.-]`);
  }
}

/** Creates the interface if missing, then converges it to the options. Never takes it down. */
export async function ensureInterface(options: EnsureInterfaceOptions): Promise<EnsureInterfaceResult> {
  const { name } = options;
  assertInterfaceName(name);
  const runner = runnerFor(options);
  const log = (options.logger ?? silentLogger).child({ iface: name });
  const privateKey = await readPrivateKeyFile(options.privateKeyPath);
  const desiredAddresses = [...new Set(options.addresses.map(canonicalAddress))];
  const desiredRoutes = [...new Set(options.routes.map(canonicalPrefix))];
  const actions: InterfaceAction[] = [];
  const act = (a: InterfaceAction): void => {
    actions.push(a);
    log.info({ action: a.kind, ...withoutKind(a) }, `wireguard interface: ${a.kind}`);
  };

  let link = await readLink(runner, name);
  const created = link === undefined;
  if (link === undefined) {
    const started = Date.now();
    const made = await createInterface(options, runner);
    act({ kind: "create", implementation: made.implementation, elapsedMs: Date.now() - started });
    link = made.link ?? (await readLink(runner, name));
    if (link === undefined) throw new InterfaceError(name, "created, but the link is not visible");
  } else if (link.kind !== "wireguard" && link.kind !== "tun") {
    throw new InterfaceError(name, `a link of kind ${link.kind ?? "unknown"} already has this name; remove or rename it`);
  }

  // A device just created has no key, no peers and no routes: nothing to read before setting them.
  let device: DeviceDump = { privateKey: undefined, publicKey: undefined, listenPort: 0, fwmark: undefined, peers: [] };
  if (!created) {
    try {
      device = await readDevice(name, { runner });
    } catch (err) {
      throw new InterfaceError(name, "exists but does not answer as WireGuard (a TUN without wireguard-go?)", { cause: err });
    }
  }

  const wgArgs: string[] = [];
  if (device.privateKey !== privateKey.toBase64()) {
    wgArgs.push("private-key", options.privateKeyPath);
    act({ kind: "set-private-key" });
  }
  if (options.listenPort !== undefined && device.listenPort !== options.listenPort) {
    wgArgs.push("listen-port", String(options.listenPort));
    act({ kind: "set-listen-port", listenPort: options.listenPort });
  }
  if (wgArgs.length > 0) {
    // wg reads the key from the (0600, just validated) file: never argv, which /proc shows.
    // Not /dev/stdin: Node's stdio "pipes" are socketpairs and wg's fopen of one fails (ENXIO).
    await runner.run(["wg", "set", name, ...wgArgs]);
  }

  // The link's changes, in this order, as one `ip -batch`: MTU, addresses, up, routes.
  const ip: string[][] = [];
  if (options.mtu !== undefined && link.mtu !== options.mtu) {
    ip.push(["link", "set", "dev", name, "mtu", String(options.mtu)]);
    act({ kind: "set-mtu", mtu: options.mtu });
  }
  ip.push(...addressChanges(link, desiredAddresses, act));
  if (!link.up) {
    ip.push(["link", "set", "dev", name, "up"]);
    act({ kind: "set-up" });
  }
  ip.push(...routeChanges(created ? [] : await readRoutes(runner, name), name, desiredRoutes, act));
  await ipBatch(runner, [], ip);

  if (actions.length === 0) log.debug("wireguard interface: unchanged");
  return {
    changed: actions.length > 0,
    created: actions.some((a) => a.kind === "create"),
    actions,
    ifindex: link.ifindex,
    publicKey: privateKey.publicKey(),
  };
}

/** Creates the link; returns how, and the link when creating it read it already (wireguard-go's wait). */
async function createInterface(options: EnsureInterfaceOptions, runner: CommandRunner): Promise<{ implementation: "kernel" | "userspace"; link?: LinkState }> {
  const { name } = options;
  const backend = await detectBackend({
    runner,
    ...(options.implementation === undefined ? {} : { implementation: options.implementation }),
    ...(options.wireguardGo === undefined ? {} : { wireguardGo: options.wireguardGo }),
  });
  try {
    if (backend.implementation === "kernel") {
      await runner.run(["ip", "link", "add", "dev", name, "type", "wireguard"]);
      return { implementation: "kernel" };
    }
    const link = await startWireguardGo({
      name,
      binary: backend.binary,
      runner,
      ...(options.createTimeoutMs === undefined ? {} : { timeoutMs: options.createTimeoutMs }),
    });
    return { implementation: "userspace", link };
  } catch (err) {
    const hint = err instanceof CommandError && err.stderr.trim() !== "" ? `: ${err.stderr.trim()}` : "";
    throw new InterfaceError(name, `cannot create with ${backend.implementation} WireGuard${hint}`, { cause: err });
  }
}

/** The `ip` commands that give the link exactly `desired` addresses. */
function addressChanges(link: LinkState, desired: readonly string[], act: (a: InterfaceAction) => void): string[][] {
  const actual = new Set(link.addresses);
  const want = new Set(desired);
  const out: string[][] = [];
  // Add before removing, so a renumbering never leaves the interface without an address.
  for (const address of desired) {
    if (actual.has(address)) continue;
    out.push(["address", "add", address, "dev", link.name]);
    act({ kind: "add-address", address });
  }
  for (const address of link.addresses) {
    if (want.has(address)) continue;
    out.push(["address", "del", address, "dev", link.name]);
    act({ kind: "remove-address", address });
  }
  return out;
}

/** The `ip` commands that route `desired` through the link and remove the other routes this module installed there. */
function routeChanges(actual: readonly RouteState[], name: string, desired: readonly string[], act: (a: InterfaceAction) => void): string[][] {
  const present = new Set(actual.map((r) => r.dst));
  const want = new Set(desired);
  const out: string[][] = [];
  for (const route of desired) {
    if (present.has(route)) continue;
    // replace: also moves a same-prefix route that points at another device.
    out.push(["route", "replace", route, "dev", name, "proto", String(WEFT_ROUTE_PROTOCOL)]);
    act({ kind: "replace-route", route });
  }
  for (const r of actual) {
    if (want.has(r.dst) || r.protocol !== String(WEFT_ROUTE_PROTOCOL)) continue;
    out.push(["route", "del", r.dst, "dev", name, "proto", String(WEFT_ROUTE_PROTOCOL)]);
    act({ kind: "remove-route", route: r.dst });
  }
  return out;
}

/** Deletes the interface (wireguard-go exits when its link goes). False if it did not exist. */
export async function deleteInterface(name: string, options: Omit<InterfaceTarget, "name"> = {}): Promise<boolean> {
  assertInterfaceName(name);
  const runner = runnerFor({ name, ...options });
  if ((await readLink(runner, name)) === undefined) return false;
  await runner.run(["ip", "link", "del", "dev", name]);
  (options.logger ?? silentLogger).child({ iface: name }).info("wireguard interface: deleted");
  return true;
}

function withoutKind(a: InterfaceAction): Record<string, unknown> {
  const { kind: _kind, ...rest } = a;
  return rest;
}
