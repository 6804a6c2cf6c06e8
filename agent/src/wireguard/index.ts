/**
 * agent/wireguard — a typed wrapper over `wg` and `ip` for the overlay interface (`weft0`).
 *
 * It diffs desired against actual state and applies only the difference: the interface is
 * created once (kernel module, else detached userspace wireguard-go) and never recreated or
 * taken down; peers are added, updated or removed one by one, never rebuilt from zero, so
 * sessions and handshakes survive every sync and every agent restart.
 *
 *   const wg = createWireGuard({ name: "weft0", logger });
 *   await wg.ensure({ privateKeyPath, addresses: ["100.64.0.5/32"], routes: ["100.64.0.0/10"] });
 *   await wg.syncPeers([{ publicKey, endpoint: "203.0.113.7:51820", allowedIps: ["100.64.0.9/32"] }]);
 *
 * Files: keys (key pairs, key files), backend (kernel or wireguard-go), interface (link, key,
 * port, MTU, addresses, routes), peers (diff and apply), dump/link (parsers). Commands run through
 * the agent's `CommandRunner` (agent/src/exec/).
 */
import { parseEndpoint } from "@weft/protocol";
import { KeyedSerial } from "@weft/util";
import { canonicalEndpoint } from "./cidr.js";
import { isValidKey } from "./keys.js";
import type { ImplementationChoice } from "./backend.js";
import { InvalidDesiredStateError } from "./errors.js";
import { createCommandRunner, type CommandRunner } from "../exec/runner.js";
import {
  deleteInterface,
  ensureInterface,
  type EnsureInterfaceOptions,
  type EnsureInterfaceResult,
} from "./interface.js";
import { readLink } from "./link.js";
import { silentLogger, type Logger } from "./logger.js";
import type { ActualPeer } from "./dump.js";
import { applyPeerChanges, diffPeers, readDevice, type DesiredPeer, type PeerChange } from "./peers.js";
import type { DeviceDump } from "./dump.js";
import { parseUapiGet, uapiGet, uapiPeerLines, uapiSet, uapiSocketPath, type UapiPeerMemo } from "./uapi.js";
import { UAPI_SOCKET_DIR } from "./userspace.js";

export { detectBackend, type Backend, type Implementation, type ImplementationChoice } from "./backend.js";
export { canonicalAddress, canonicalEndpoint, canonicalPrefix } from "./cidr.js";
export { parseDump, type ActualPeer, type DeviceDump } from "./dump.js";
export * from "./errors.js";
export {
  WEFT_ROUTE_PROTOCOL,
  deleteInterface,
  ensureInterface,
  type EnsureInterfaceOptions,
  type EnsureInterfaceResult,
  type InterfaceAction,
} from "./interface.js";
export {
  PrivateKey,
  assertValidKey,
  derivePublicKey,
  generateKeyPair,
  isValidKey,
  loadOrCreatePrivateKey,
  readPrivateKeyFile,
  writePrivateKeyFile,
  type KeyPair,
} from "./keys.js";
export { silentLogger, type Logger } from "./logger.js";
export {
  applyPeerChanges,
  diffPeers,
  readPeers,
  type DesiredPeer,
  type PeerChange,
} from "./peers.js";

export interface WireGuardOptions {
  /** Interface name, e.g. "weft0" (at most 15 characters). */
  name: string;
  /** Used only when the interface has to be created; default "auto". */
  implementation?: ImplementationChoice;
  /** Run every command in this network namespace (tests, lab). */
  netns?: string;
  /** pino or compatible, already named by the caller (e.g. `log.child({ component: "wireguard" })`);
   * this module adds `iface` (and `peer` per peer change). */
  logger?: Logger;
  /** wireguard-go binary; default looked up on PATH. */
  wireguardGo?: string;
  /** Bound on waiting for wireguard-go to create the interface; default 5 s. */
  createTimeoutMs?: number;
  /** Replace the process runner (tests). */
  runner?: CommandRunner;
  /**
   * Where a userspace device's UAPI socket is looked for (`<dir>/<name>.sock`): reads go there
   * instead of spawning `wg show dump` (wireguard/uapi.ts); a kernel device has none and is read
   * with `wg`. Default /var/run/wireguard, but not with `netns` or `runner` (tests, whose commands
   * run elsewhere): there every read uses `wg`.
   */
  uapiSocketDir?: string;
}

/** Per-call interface settings: everything of `ensureInterface` but the target. */
export type EnsureOptions = Pick<
  EnsureInterfaceOptions,
  "privateKeyPath" | "addresses" | "routes" | "mtu" | "listenPort"
>;

export interface SyncSummary {
  added: number;
  removed: number;
  updated: number;
  /** Exactly what was applied; empty when nothing differed. */
  changes: PeerChange[];
}

export interface WireGuardStatus {
  name: string;
  ifindex: number;
  mtu: number;
  up: boolean;
  addresses: string[];
  publicKey: string | undefined;
  listenPort: number;
  fwmark: number | undefined;
  /** Public key, endpoint, allowed IPs, latest handshake and transfer of each peer. */
  peers: ActualPeer[];
}

export interface WireGuard {
  readonly name: string;
  /** Creates the interface if needed and converges key, port, MTU, addresses and routes. */
  ensure(options: EnsureOptions): Promise<EnsureInterfaceResult>;
  /** Converges the peer list to `desired`; peers not in it are removed. */
  syncPeers(desired: readonly DesiredPeer[]): Promise<SyncSummary>;
  /** The interface and its peers, or undefined if the interface does not exist. */
  show(): Promise<WireGuardStatus | undefined>;
  /** The peers as WireGuard has them now (the UAPI socket, else one `wg show dump`; cheaper than show). */
  peers(): Promise<ActualPeer[]>;
  /**
   * Points one existing peer at `endpoint` now, without touching anything else (path probing:
   * WireGuard roams to where the peer's packets come from, so a probe re-asserts its candidate).
   */
  setEndpoint(publicKey: string, endpoint: string): Promise<void>;
  /** Deletes the interface; false if it did not exist. */
  destroy(): Promise<boolean>;
}

/** The public surface: one object per interface. Its operations run one at a time. */
export function createWireGuard(options: WireGuardOptions): WireGuard {
  const { name } = options;
  const runner = options.runner ?? createCommandRunner({ netns: options.netns });
  const log = (options.logger ?? silentLogger).child({ iface: name });
  const queue = new KeyedSerial();
  const serial = <T>(op: () => Promise<T>): Promise<T> => queue.run(name, op);
  const uapiDir = options.uapiSocketDir ?? (options.runner === undefined && options.netns === undefined ? UAPI_SOCKET_DIR : undefined);
  const memo: UapiPeerMemo = { peers: new Map() };
  const socket = uapiDir === undefined ? undefined : uapiSocketPath(uapiDir, name);
  /**
   * The device through its UAPI socket when it has one (no process spawned; `uapi` is then the
   * socket, which takes changes too), else through `wg show dump`.
   */
  const readVia = async (): Promise<{ device: DeviceDump; uapi?: string }> => {
    if (socket !== undefined) {
      const answer = await uapiGet(socket).catch(() => undefined); // no socket: a kernel device
      if (answer !== undefined) return { device: parseUapiGet(answer, memo), uapi: socket };
    }
    return { device: await readDevice(name, { runner }) };
  };
  const read = async (): Promise<DeviceDump> => (await readVia()).device;

  return {
    name,

    ensure: (ensureOptions) =>
      serial(() =>
        ensureInterface({
          ...ensureOptions,
          name,
          runner,
          logger: log,
          ...(options.implementation === undefined ? {} : { implementation: options.implementation }),
          ...(options.wireguardGo === undefined ? {} : { wireguardGo: options.wireguardGo }),
          ...(options.createTimeoutMs === undefined ? {} : { createTimeoutMs: options.createTimeoutMs }),
        }),
      ),

    syncPeers: (desired) =>
      serial(async () => {
        const { device, uapi } = await readVia();
        const self = desired.find((p) => p.publicKey === device.publicKey);
        if (self !== undefined) {
          throw new InvalidDesiredStateError(`desired peer ${self.publicKey} is this interface's own public key`);
        }
        const changes = diffPeers(desired, device.peers);
        if (uapi === undefined) await applyPeerChanges(name, changes, { runner });
        else if (changes.length > 0) await uapiSet(uapi, uapiPeerLines(changes));
        const summary: SyncSummary = { added: 0, removed: 0, updated: 0, changes };
        for (const c of changes) {
          if (c.kind === "add") {
            summary.added++;
            log.info(
              { peer: c.peer.publicKey, endpoint: c.peer.endpoint, allowedIps: c.peer.allowedIps },
              "wireguard peer added",
            );
          } else if (c.kind === "remove") {
            summary.removed++;
            log.info({ peer: c.publicKey }, "wireguard peer removed");
          } else {
            summary.updated++;
            const { kind: _kind, publicKey, ...fields } = c;
            log.info({ peer: publicKey, ...fields }, "wireguard peer updated");
          }
        }
        log.debug({ peers: desired.length, ...summaryCounts(summary) }, "wireguard peers synced");
        return summary;
      }),

    show: () =>
      serial(async () => {
        const link = await readLink(runner, name);
        if (link === undefined) return undefined;
        const device = await read();
        return {
          name,
          ifindex: link.ifindex,
          mtu: link.mtu,
          up: link.up,
          addresses: link.addresses,
          publicKey: device.publicKey,
          listenPort: device.listenPort,
          fwmark: device.fwmark,
          peers: device.peers,
        };
      }),

    peers: () => serial(async () => (await read()).peers),

    setEndpoint: (publicKey, endpoint) =>
      serial(async () => {
        if (!isValidKey(publicKey)) throw new InvalidDesiredStateError(`setEndpoint: invalid public key ${JSON.stringify(publicKey)}`);
        if (parseEndpoint(endpoint, { ipv6: true }) === undefined) throw new InvalidDesiredStateError(`setEndpoint: ${JSON.stringify(endpoint)} is not ip:port`);
        await applyPeerChanges(name, [{ kind: "update", publicKey, endpoint: canonicalEndpoint(endpoint) }], { runner });
      }),

    destroy: () => serial(() => deleteInterface(name, { runner, logger: log })),
  };
}

function summaryCounts(s: SyncSummary): { added: number; removed: number; updated: number } {
  return { added: s.added, removed: s.removed, updated: s.updated };
}
