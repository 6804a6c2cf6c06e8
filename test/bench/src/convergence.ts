/**
 * Control-plane timings on the lab, measured from outside with the UAPI (see handshakes.ts):
 * - start-up: every agent started at once, time until each host has a handshake with all peers;
 * - agent restart: one enrolled agent stopped and started again (state and interface kept, as
 *   after an upgrade): time until it has re-synced from NATS, and whether any session lapsed;
 * - host restart: the agent stopped and its WireGuard interface deleted (what a reboot does),
 *   state kept: time from agent start until its handshakes with all peers are fresh again.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { interfaceNameFor, labExec, type LabCluster } from "@weft/lab";
import { BenchError } from "./errors.js";
import { liveSessions, readDevice, watchHandshakes, type HandshakeTiming } from "./handshakes.js";
import { summarize, type Summary } from "./stats.js";

export interface Agents {
  cluster: LabCluster;
  prefix: string;
  hosts: readonly string[];
  /** Peer public key (hex, as the UAPI prints it) → host name, as measureStartup returns it. */
  names: ReadonlyMap<string, string>;
}

/** The host's Weft interface: `<prefix>-<host>`, unique across labs (UAPI sockets share a directory). */
export const ifaceOf = (a: Pick<Agents, "prefix">, host: string): string => interfaceNameFor(host, a.prefix);

/** A HandshakeTiming with peers named by host instead of by public key. */
export type HostTiming = HandshakeTiming;

function named(t: HandshakeTiming, names: ReadonlyMap<string, string>): HostTiming {
  const name = (hex: string) => names.get(hex) ?? hex;
  return {
    ...t,
    waitingFor: t.waitingFor.map(name),
    peerHandshakeMs: Object.fromEntries(Object.entries(t.peerHandshakeMs).map(([k, v]) => [name(k), v]).sort(([a], [b]) => String(a).localeCompare(String(b)))),
  };
}

/** Public key (hex, as the UAPI prints it) → node name, from the controller. */
async function nodeNames(cluster: LabCluster): Promise<Map<string, string>> {
  const nodes = await (await cluster.client()).listNodes();
  return new Map(nodes.map((n) => [Buffer.from(n.wireguardPublicKey, "base64").toString("hex"), n.name]));
}

export interface StartupResult {
  startedAt: string;
  agents: number;
  peersEach: number;
  perHost: HostTiming[];
  /** Over hosts: when the poll saw all handshakes, and when the last one completed. */
  detectedMs: Summary;
  handshakeMs: Summary;
}

/**
 * Starts an agent on every host at once and times each host's full set of handshakes. Also
 * returns the controller's public key → host map, to name peers in the later measurements.
 */
export async function measureStartup(
  a: Pick<Agents, "cluster" | "prefix" | "hosts">,
  /** The join key, or each host's. */
  joinKey: string | ((host: string) => string),
  o: { timeoutMs: number; signal: AbortSignal },
): Promise<{ result: StartupResult; names: Map<string, string> }> {
  const t0 = Date.now();
  await Promise.all(a.hosts.map((h) => a.cluster.startAgent(h, typeof joinKey === "string" ? joinKey : joinKey(h))));
  const peers = a.hosts.length - 1;
  const timings = await watchHandshakes(
    a.hosts.map((host) => ({ host, iface: ifaceOf(a, host), peers })),
    { t0, timeoutMs: o.timeoutMs, signal: o.signal },
  );
  const late = timings.filter((t) => t.detectedMs === null);
  if (late.length > 0) {
    throw new BenchError(
      `start-up: after ${o.timeoutMs / 1000} s, ${late.map((t) => `${t.host} has ${t.freshPeers}/${peers}`).join(", ")} handshakes; see the agent logs in ${a.cluster.logDir}`,
    );
  }
  const names = await nodeNames(a.cluster);
  const result: StartupResult = {
    startedAt: new Date(t0).toISOString(),
    agents: a.hosts.length,
    peersEach: peers,
    perHost: timings.map((t) => named(t, names)),
    detectedMs: summarize(timings.map((t) => t.detectedMs as number)),
    handshakeMs: summarize(timings.map((t) => t.handshakeMs as number)),
  };
  return { result, names };
}

export interface AgentRestartResult {
  host: string;
  /** SIGTERM until the old agent had exited. */
  stopMs: number;
  /** From SIGTERM until the new agent wrote status `connected`, not stale (peers re-applied from NATS). */
  syncedMs: number | null;
  /** Fewest peers with a usable session (handshake < 180 s old) seen while restarting. */
  minLiveSessions: number;
  peers: number;
}

/** Restarts one enrolled agent with its state and interface in place. */
export async function measureAgentRestart(a: Agents, host: string, o: { timeoutMs: number; signal: AbortSignal }): Promise<AgentRestartResult> {
  const iface = ifaceOf(a, host);
  const peers = a.hosts.length - 1;
  const statusPath = join(agentStateDir(a, host), "status.json");
  let minLive = await liveSessions(iface);
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      minLive = Math.min(minLive, await liveSessions(iface));
      await sleep(50);
    }
  })();
  try {
    const t0 = Date.now();
    await a.cluster.stopAgent(host);
    const stopMs = Date.now() - t0;
    await a.cluster.startAgent(host);
    let syncedMs: number | null = null;
    while (Date.now() - t0 < o.timeoutMs) {
      o.signal.throwIfAborted();
      const status = await readStatus(statusPath);
      if (status && status.nats === "connected" && status.stale === false && Date.parse(status.updatedAt) >= t0) {
        syncedMs = Date.now() - t0;
        break;
      }
      await sleep(50);
    }
    return { host, stopMs, syncedMs, minLiveSessions: minLive, peers };
  } finally {
    watching = false;
    await watcher;
  }
}

export interface HostRestartResult extends HostTiming {
  /** The old interface was gone (link deleted, wireguard-go exited) this long after the agent stopped. */
  interfaceGoneMs: number;
  peers: number;
  timeoutMs: number;
}

/** Stops one agent, deletes its interface like a reboot would, starts it again with its state. */
export async function measureHostRestart(a: Agents, host: string, o: { timeoutMs: number; signal: AbortSignal }): Promise<HostRestartResult> {
  const iface = ifaceOf(a, host);
  const peers = a.hosts.length - 1;
  await a.cluster.stopAgent(host);
  const stopped = Date.now();
  const del = await labExec(a.cluster.opts, host, ["ip", "link", "del", "dev", iface]);
  if (del.exitCode !== 0) throw new BenchError(`host restart: ip link del ${iface} on ${host}: ${del.stderr.trim()}`);
  while ((await readDevice(iface, 200)) !== undefined) {
    if (Date.now() - stopped > 5000) throw new BenchError(`host restart: wireguard-go for ${iface} still answers 5 s after its link was deleted`);
    await sleep(20);
  }
  const interfaceGoneMs = Date.now() - stopped;
  const t0 = Date.now();
  await a.cluster.startAgent(host);
  const [timing] = await watchHandshakes([{ host, iface, peers }], { t0, timeoutMs: o.timeoutMs, signal: o.signal });
  return { ...named(timing as HandshakeTiming, a.names), interfaceGoneMs, peers, timeoutMs: o.timeoutMs };
}

function agentStateDir(a: Agents, host: string): string {
  const handle = a.cluster.agents.get(host);
  if (!handle) throw new BenchError(`no agent was started on ${host}`);
  return handle.stateDir;
}

interface StatusFile {
  nats?: string;
  stale?: boolean;
  updatedAt: string;
}

async function readStatus(path: string): Promise<StatusFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as Partial<StatusFile>;
    return typeof parsed.updatedAt === "string" ? (parsed as StatusFile) : undefined;
  } catch {
    return undefined;
  }
}
