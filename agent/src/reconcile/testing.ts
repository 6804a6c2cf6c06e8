/**
 * Helpers shared by this folder's tests (not part of the public surface): an enrolled node's
 * state in a temporary directory, its status, a fake host (wireguard/host_fake.ts) behind a real
 * `WireGuard`, and the interface, site-route and peer reconcilers wired as the agent wires them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PeerRecord } from "@weft/protocol";
import { pino, type Logger } from "pino";
import type { FakeHandler, FakeRunner } from "../exec/runner_fake.js";
import { GatewayForwarding } from "../net/gateway.js";
import type { Self } from "../peers/desired.js";
import { StateHolder } from "../state/holder.js";
import type { AgentState } from "../state/store.js";
import { StatusReporter } from "../status/reporter.js";
import { FAKE_IFNAME, fakeHost, type HostState } from "../wireguard/host_fake.js";
import { PrivateKey, createWireGuard, writePrivateKeyFile, type WireGuard } from "../wireguard/index.js";
import { OverlayInterface } from "./interface.js";
import { PeerReconciler } from "./peers.js";
import { SiteRouteReconciler } from "./site-routes.js";

export const OVERLAY_CIDR = "100.64.0.0/16";

export interface LogLine {
  msg: string;
  level: number;
  [k: string]: unknown;
}

export function recordingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { log: pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) }), lines };
}

/** A valid peer record; `n` picks its node id, name and overlay address. */
export function peerRecord(n: number, site: string, fields: Partial<PeerRecord> = {}): PeerRecord {
  return {
    version: 1,
    nodeId: `n-${n.toString(16).padStart(16, "0")}`,
    name: `${site}-${n}`,
    site,
    wireguardPublicKey: PrivateKey.generate().publicKey(),
    overlayAddress: `100.64.0.${n}`,
    allowedIps: [`100.64.0.${n}/32`],
    endpoints: {},
    updatedAt: "2030-01-01T00:00:00.000Z",
    ...fields,
  };
}

export interface Node {
  dir: string;
  host: HostState;
  runner: FakeRunner;
  wireguard: WireGuard;
  state: StateHolder;
  status: StatusReporter;
  self: Self;
  iface: OverlayInterface;
  siteRoutes: SiteRouteReconciler;
  peers: PeerReconciler;
  /** Overlay addresses sent a warm-up datagram, per apply. */
  warmed: string[][];
  lines: LogLine[];
  log: Logger;
  cleanup(): Promise<void>;
}

export interface NodeOptions {
  /** Node number (id, name, overlay address); default 1. */
  n?: number;
  site?: string;
  behindNat?: boolean;
  /** Fields of state.json beyond the enrollment (a cache from an earlier run). */
  cached?: Partial<AgentState>;
  host?: Partial<HostState>;
  /** Answers commands the fake host does not know (iptables, sysctl). */
  extra?: FakeHandler;
  /** Behind NAT: re-adding peers without a handshake; default none (attempts 0), so tests stay deterministic. */
  firstHandshakeRetryMs?: readonly number[];
}

/** No WEFT-SNAT chain yet: the gateway role has nothing to clean up. */
export const noGatewayChain: FakeHandler = (argv) => {
  if (argv.join(" ") === "iptables -w 5 -t nat -S WEFT-SNAT") throw new Error("iptables: No chain/target/match by that name.");
  throw new Error(`fake host: unexpected command: ${argv.join(" ")}`);
};

/** An enrolled node on a fake host, with no datapath (datapath.enabled: false). */
export async function enrolledNode(o: NodeOptions = {}): Promise<Node> {
  const n = o.n ?? 1;
  const site = o.site ?? "aws";
  const dir = await mkdtemp(join(tmpdir(), "weft-reconcile-"));
  const keyPath = join(dir, "wireguard.key");
  await writePrivateKeyFile(keyPath, PrivateKey.generate());
  const { log, lines } = recordingLogger();
  const host: HostState = { exists: false, kind: "", mtu: 0, up: false, addresses: [], routes: [], privateKey: undefined, listenPort: 0, peers: [], ...o.host };
  const runner = fakeHost(host, { extra: o.extra ?? noGatewayChain });
  const wireguard = createWireGuard({ name: FAKE_IFNAME, implementation: "kernel", runner });
  const state = await StateHolder.create(dir, {
    version: 1,
    nodeId: `n-${n.toString(16).padStart(16, "0")}`,
    name: `${site}-${n}`,
    site,
    overlayAddress: `100.64.0.${n}`,
    overlayCidr: OVERLAY_CIDR,
    controllerUrl: "https://198.19.0.2:8080",
    nats: { servers: ["nats://198.19.0.2:4222"], userJwt: "eyJ0eXAiOiJKV1QifQ.e30.x" },
    heartbeatSeconds: 10,
    enrolledAt: "2030-01-01T00:00:00.000Z",
    ...o.cached,
  });
  const status = new StatusReporter(dir, { nodeId: state.current.nodeId, interface: FAKE_IFNAME, policyRevision: -1, policyEntries: 0, nats: "connecting", stale: true, appliedRevision: state.current.applied?.revision ?? 0, peers: state.current.applied?.peers.length ?? 0 }, log);
  const self: Self = { nodeId: state.current.nodeId, site, behindNat: o.behindNat ?? false, keepaliveSeconds: 25 };
  const overlayRanges = [OVERLAY_CIDR];
  const iface = new OverlayInterface({ wireguard, state, settings: { privateKeyPath: keyPath, listenPort: 51820, mtu: 1420, addresses: [`${state.current.overlayAddress}/32`] }, overlayRanges, log });
  const siteRoutes = new SiteRouteReconciler({ self, overlayRanges, iface, interfaceName: FAKE_IFNAME, gateway: new GatewayForwarding(runner, log), snat: true, controller: [{ address: "198.19.0.2", what: "API and NATS" }], run: runner, status, log });
  const warmed: string[][] = [];
  const peers = new PeerReconciler({
    self,
    wireguard,
    siteRoutes,
    datapath: undefined,
    state,
    status,
    log,
    warmUp: async (addresses) => void warmed.push([...addresses]),
    firstHandshakeRetryMs: o.firstHandshakeRetryMs ?? [],
  });
  return {
    dir,
    host,
    runner,
    wireguard,
    state,
    status,
    self,
    iface,
    siteRoutes,
    peers,
    warmed,
    lines,
    log,
    cleanup: async () => {
      peers.stop();
      await peers.idle();
      await Promise.all([status.idle(), state.idle()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A peer set as the peers watch reports it. */
export function peerSet(records: PeerRecord[], revision: number) {
  return { peers: new Map(records.map((r) => [r.nodeId, r])), revision };
}
