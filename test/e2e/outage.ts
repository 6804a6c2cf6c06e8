/**
 * The fail-static scenario shared by `outage.test.ts` (two 60 s outages) and the outage benchmark
 * (`npm run bench -- outage`, one outage of any length): a lab of four hosts in three sites with
 * two site gateways, the single controller and its embedded nats-server frozen (SIGSTOP) or killed
 * for a while, and what the hosts and the controller saw across it.
 *
 * The lab: aws-1, gcp-1, gcp-2 (both gcp hosts tagged `weft:gateway`, so one advertises
 * 10.30.0.0/16 and the other stands by: a wrong offline judgement would show as a failover) and
 * onprem-1 (gateway for 192.168.50.0/24 by its join key) — every pair of a cloud-to-cloud,
 * same-site and NAT'd path. Cloud hosts join keyless by instance identity.
 *
 * One outage (`runOutage`), measured:
 *   - pings every 0.2 s across every ordered pair of hosts over the overlay, and to the site
 *     routers behind the gateways (10.30.0.1, 192.168.50.1, no agent), from before the outage
 *     until two offline periods after the control plane is back: sent, replies, lost;
 *   - every 2 s, each host's routes into its WireGuard interface and its peers' allowed IPs,
 *     compared with before the outage;
 *   - the hosts are cut off the controller's NATS port from the outage until 5 s after the API
 *     answers again, so the controller sees before the agents can report (AGENTS_HELD_BACK_MS);
 *   - after the return: how long until the API answers and every agent is connected and in sync,
 *     and from the return every 500 ms until two offline periods after it and after the API answered, the node list (statuses, members) and the gateway
 *     of every site; the controller's log lines that mean a judgement moved (offline, route
 *     advertised or withdrawn, node deleted);
 *   - then a policy change made after the outage and the time until every agent applies it.
 */
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ControllerClient, MetadataProvider, NodeView } from "@weft/protocol";
import {
  LAB_ONPREM_KEY_LABELS,
  LAB_ONPREM_KEY_SITE,
  LabCluster,
  freezeControlPlane,
  instanceIdFor,
  killControlPlane,
  labCloudAdmin,
  labCutAgentsFromNats,
  labDir,
  labDown,
  labExec,
  labUp,
  startPingStream,
  thawControlPlane,
  type ControlPlanePids,
  type LabOptions,
  type PingStream,
  type RunningClouds,
} from "@weft/lab";
import { logMessages, logOffset, logSince, readAgentStatus, sleep, waitUntil } from "./mesh.js";

export const OUTAGE_HOSTS = ["aws-1", "gcp-1", "gcp-2", "onprem-1"] as const;
/** Machines without an agent behind each site's gateway, and the site network they are in. */
export const SITE_TARGETS = [
  { site: "gcp", cidr: "10.30.0.0/16", address: "10.30.0.1" },
  { site: "onprem", cidr: "192.168.50.0/24", address: "192.168.50.1" },
] as const;
/** Site-route probes: from a host in another site to each site router. */
export const SITE_PROBES = [
  { from: "aws-1", to: "10.30.0.1" },
  { from: "onprem-1", to: "10.30.0.1" },
  { from: "aws-1", to: "192.168.50.1" },
  { from: "gcp-2", to: "192.168.50.1" },
] as const;
/** The controller's default `offlineAfterSeconds` (controller/src/config.ts), which the lab keeps. */
export const OFFLINE_AFTER_S = 15;
/**
 * After the control plane answers again, the hosts stay cut off its NATS port this long: the
 * controller sees, the agents cannot report yet. Only judging liveness from what the agents could
 * not report (a whole offline period from the return) keeps their nodes online across this; a
 * controller that counted its own absence as their silence would judge them offline at once.
 */
export const AGENTS_HELD_BACK_MS = 5000;
/** Controller log messages that mean a node's judgement or a route moved. */
export const MOVED_MESSAGES = ["node is offline", "node no longer advertises site routes", "node advertises its site's routes", "node deleted"];

export interface OutageLab {
  opts: LabOptions;
  cluster: LabCluster;
  clouds: RunningClouds;
  client: ControllerClient;
  /** Overlay address per host. */
  addresses: Map<string, string>;
}

/** The scenario's cluster on a lab that is up: the simulators run beside the controller. */
export function outageCluster(opts: LabOptions): LabCluster {
  return new LabCluster({ ...opts, clouds: true });
}

/** Lab up (from nothing), then `outageSetup` (the benchmark; the suites get their lab from lab-suite.ts). */
export async function outageLabUp(opts: LabOptions, say: (line: string) => void = () => {}): Promise<OutageLab> {
  await labDown(opts);
  await rm(labDir(opts), { recursive: true, force: true });
  await labUp(opts);
  return outageSetup(outageCluster(opts), opts, say);
}

/** On a fresh lab's cluster: simulators, controller with inventory, four agents, full mesh and site routes in place. */
export async function outageSetup(cluster: LabCluster, opts: LabOptions, say: (line: string) => void = () => {}): Promise<OutageLab> {
  const clouds = await cluster.startClouds();
  // gcp-2 stands by as gcp's second gateway: a wrong offline judgement of gcp-1 would move the routes to it.
  await labCloudAdmin(clouds, "gcp", "PATCH", `/instances/${encodeURIComponent(instanceIdFor("gcp", "gcp-2"))}/tags`, { tags: { "weft:gateway": "true" }, mode: "patch" });
  await cluster.startController(["--inventory-config", clouds.inventoryConfigPath]);
  let client = await cluster.client();
  await client.syncInventory();
  for (const provider of ["aws", "gcp"] as const satisfies readonly MetadataProvider[]) {
    await client.applyEnrollmentPolicy({ name: `outage-${provider}`, selector: { provider, tags: { env: "lab" } } });
  }
  const key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "outage: onprem", labels: { ...LAB_ONPREM_KEY_LABELS }, site: LAB_ONPREM_KEY_SITE });
  const t0 = Date.now();
  await Promise.all(OUTAGE_HOSTS.map((h) => cluster.startAgent(h, h === "onprem-1" ? key.key : undefined)));
  await cluster.waitForFullMesh(180_000);
  say(`full mesh of ${OUTAGE_HOSTS.length} hosts ${Date.now() - t0} ms after the agents started`);
  client = await cluster.client();
  const nodes = await client.listNodes();
  const addresses = new Map(nodes.map((n) => [n.name, n.overlayAddress]));
  const lab: OutageLab = { opts, cluster, clouds, client, addresses };
  await waitUntil("both site gateways chosen and their routes on every host of another site", 60_000, async () => {
    const gw = await gateways(lab);
    if (!SITE_TARGETS.every((t) => gw[t.site])) return false;
    for (const t of SITE_TARGETS) {
      for (const h of OUTAGE_HOSTS.filter((x) => siteOf(x) !== t.site)) if ((await routeDev(lab, h, t.address)) !== lab.cluster.agents.get(h)!.interfaceName) return false;
    }
    return true;
  }, 500);
  say(`site gateways: ${JSON.stringify(await gateways(lab))}`);
  return lab;
}

export async function outageLabDown(lab: { opts: LabOptions; cluster?: LabCluster | undefined }, keepHostDirs: boolean): Promise<void> {
  try {
    await lab.cluster?.stopAll();
  } finally {
    await labDown({ ...lab.opts, keepHostDirs });
  }
}

const siteOf = (host: string) => host.replace(/-\d+$/, "");

async function routeDev(lab: OutageLab, host: string, address: string): Promise<string | undefined> {
  return /\bdev (\S+)/.exec((await labExec(lab.opts, host, ["ip", "-4", "route", "get", address])).stdout)?.[1];
}

/** The gateway node name per site with routes (null: none chosen), from the controller's inventory view. */
export async function gateways(lab: OutageLab): Promise<Record<string, string | null>> {
  const view = await lab.client.inventory();
  return Object.fromEntries(view.siteRoutes.filter((r) => SITE_TARGETS.some((t) => t.site === r.site)).map((r) => [r.site, r.gateway?.name ?? null]));
}

/** What a host's data plane holds that the control plane gave it: routes into its interface, and each peer's allowed IPs. */
export async function dataPlane(lab: OutageLab, host: string): Promise<string> {
  const iface = lab.cluster.agents.get(host)!.interfaceName;
  const routes = (await labExec(lab.opts, host, ["ip", "-4", "route", "show", "dev", iface])).stdout.trim().split("\n").map((l) => l.trim()).sort();
  const allowed = (await labExec(lab.opts, host, ["wg", "show", iface, "allowed-ips"])).stdout.trim().split("\n").map((l) => l.split(/\s+/).sort().join(" ")).sort();
  return JSON.stringify({ routes, allowed });
}

export interface PairFigures {
  from: string;
  to: string;
  address: string;
  sent: number;
  replies: number;
  lost: number;
  /** icmp_seq of the lost requests (at most 20 listed). */
  lostSeqs: number[];
}

export interface OutageFigures {
  kind: "freeze" | "kill";
  outageSeconds: number;
  /** Pings every 0.2 s from before the outage until two offline periods after the return. */
  pingIntervalS: number;
  pings: PairFigures[];
  sitePings: PairFigures[];
  pingsSent: number;
  pingsLost: number;
  /** From the return (SIGCONT, or the restart command) until the API answers, and until every agent is connected and in sync. */
  apiBackMs: number;
  /** From the return until the hosts could reach NATS again (AGENTS_HELD_BACK_MS after the API answered). */
  agentsHeldBackMs: number;
  agentsBackMs: number;
  /** How long after the return the controller was watched (node list, gateways, every 500 ms from the return), and how many looks it answered. */
  watchedAfterReturnMs: number;
  controllerLooks: number;
  /** Node names seen with a status other than online after the return, with the statuses. */
  offlineAfter: string[];
  /** Nodes in the list before the outage that were missing at any look after it. */
  removedAfter: string[];
  gatewaysBefore: Record<string, string | null>;
  /** Every gateway change seen after the return (`site: a → b`). */
  gatewayChanges: string[];
  /** Differences in any host's routes or peers' allowed IPs from before the outage, as sampled every 2 s throughout. */
  dataPlaneChanges: string[];
  dataPlaneSamples: number;
  /** Hosts whose agent reported the outage itself (NATS not connected, or a stale config) at some sample during it. */
  agentsSawOutage: string[];
  /** Controller log lines (since the outage began) that mean a judgement or a route moved. */
  controllerMoves: string[];
  /** A policy change made after the watch: from the API call until every agent applied it. */
  changeToAllMs: number;
}

/**
 * One outage of `seconds`: freeze (SIGSTOP) or kill (SIGKILL, then a restart on the same state)
 * the controller and its nats-server. Leaves the control plane running again.
 */
export async function runOutage(lab: OutageLab, kind: "freeze" | "kill", seconds: number, say: (line: string) => void = () => {}): Promise<OutageFigures> {
  const { opts, cluster } = lab;
  const nodesBefore = await lab.client.listNodes();
  const gatewaysBefore = await gateways(lab);
  const planeBefore = new Map(await Promise.all(OUTAGE_HOSTS.map(async (h) => [h, await dataPlane(lab, h)] as const)));
  const controllerLog = join(cluster.logDir, "controller.log");
  const logFrom = await logOffset(controllerLog);

  const pingIntervalS = PING_INTERVAL_S;
  const streams = startOutagePings(lab);

  // The data plane, sampled every 2 s from now until the end of the watch; and whether each agent
  // itself saw the outage (its status said disconnected or stale at some sample while it lasted).
  const dataPlaneChanges: string[] = [];
  const sawOutage = new Set<string>();
  let outageOn = false;
  let samples = 0;
  let sampling = true;
  const t0 = Date.now();
  const sampler = (async () => {
    while (sampling) {
      await Promise.all(
        OUTAGE_HOSTS.map(async (h) => {
          const now = await dataPlane(lab, h);
          if (now !== planeBefore.get(h) && dataPlaneChanges.length < 20) dataPlaneChanges.push(`+${Date.now() - t0} ms ${h}: ${now} (before: ${planeBefore.get(h)})`);
          const s = await readAgentStatus(cluster.agents.get(h)!.stateDir);
          if (outageOn && (s?.nats !== "connected" || s.stale)) sawOutage.add(h);
        }),
      );
      samples++;
      await sleep(2000);
    }
  })();

  let pids: ControlPlanePids | undefined;
  let returnedAt = 0;
  try {
    await sleep(3000);
    const outAt = Date.now();
    await labCutAgentsFromNats(opts, true);
    pids = kind === "freeze" ? await freezeControlPlane(cluster) : await killControlPlane(cluster);
    outageOn = true;
    say(`${kind}: controller ${pids.controller} and nats-server ${pids.nats} ${kind === "freeze" ? "stopped (SIGSTOP)" : "killed (SIGKILL)"} for ${seconds} s`);
    const half = streams.pairReplies();
    await sleep(seconds * 1000 - (Date.now() - outAt));
    say(`${kind}: ${streams.pairReplies() - half} ping replies between hosts during the outage; returning`);
    returnedAt = Date.now();
    outageOn = false;
    if (kind === "freeze") thawControlPlane(pids);
    else await cluster.startController();
    pids = undefined;
    lab.client = await cluster.client({ timeoutMs: 5000 });
    // From the return until two offline periods after it — and after the API answered, when the
    // controller's start took longer than the return's first few seconds — every 500 ms: the node
    // list and the gateways.
    const watchWindow = { until: returnedAt + WATCH_MS };
    const watch = watchJudgements(lab, nodesBefore, gatewaysBefore, returnedAt, watchWindow);
    await waitUntil("the controller's API answers", 60_000, async () => (await lab.client.raw("GET", "/healthz", undefined, {}, 2000)).status === 200, 100);
    const apiAt = Date.now();
    watchWindow.until = Math.max(watchWindow.until, apiAt + WATCH_MS);
    await sleep(AGENTS_HELD_BACK_MS);
    await labCutAgentsFromNats(opts, false);
    const healedAt = Date.now();
    // An agent that saw the outage (a short freeze may pass before its NATS pings give up) must have resynced since.
    const agentsBackMs = await waitUntil("every agent connected to NATS and in sync again", 90_000, async () => {
      for (const h of OUTAGE_HOSTS) {
        const s = await readAgentStatus(cluster.agents.get(h)!.stateDir);
        if (s?.nats !== "connected" || s.stale) return false;
        if (sawOutage.has(h) && (!s.lastSyncAt || Date.parse(s.lastSyncAt) < outAt)) return false;
      }
      return true;
    }, 100)
      .then(() => Date.now() - returnedAt)
      .catch(async (err: Error) => {
        const states = await Promise.all(OUTAGE_HOSTS.map(async (h) => `${h}=${JSON.stringify(await readAgentStatus(cluster.agents.get(h)!.stateDir))}`));
        throw new Error(`${err.message}; outage seen by ${[...sawOutage].join(", ") || "none"}; status files: ${states.join("; ")}`);
      });
    say(`${kind}: API answers ${apiAt - returnedAt} ms after the return, hosts let back to NATS ${healedAt - returnedAt} ms after it, every agent connected and in sync after ${agentsBackMs} ms; watching until ${Math.round((watchWindow.until - returnedAt) / 1000)} s after the return`);

    // The watch ran from the return (before the API answered: those looks failed and are skipped)
    // until two offline periods after the return and after the API answered.
    const judged = await watch;
    const watchedAfterReturnMs = Date.now() - returnedAt;
    sampling = false;
    await sampler;
    const { pings, sitePings } = await streams.stop();
    const figures = [...pings, ...sitePings];

    const controllerMoves = (await logSince(controllerLog, logFrom))
      .split("\n")
      .filter((l) => logMessages(l).some((m) => MOVED_MESSAGES.includes(m)))
      .slice(0, 20);

    // The mesh still converges: a policy change made now reaches every agent.
    const before = new Map(await Promise.all(OUTAGE_HOSTS.map(async (h) => [h, (await readAgentStatus(cluster.agents.get(h)!.stateDir))?.policyRevision ?? -1] as const)));
    const changeAt = Date.now();
    await togglePolicy(lab.client);
    await waitUntil("every agent applies the policy change made after the outage", 30_000, async () => {
      for (const h of OUTAGE_HOSTS) if (((await readAgentStatus(cluster.agents.get(h)!.stateDir))?.policyRevision ?? -1) <= before.get(h)!) return false;
      return true;
    }, 50);
    const changeToAllMs = Date.now() - changeAt;
    return {
      kind,
      outageSeconds: seconds,
      pingIntervalS,
      pings,
      sitePings,
      pingsSent: figures.reduce((n, f) => n + f.sent, 0),
      pingsLost: figures.reduce((n, f) => n + f.lost, 0),
      apiBackMs: apiAt - returnedAt,
      agentsHeldBackMs: healedAt - returnedAt,
      agentsBackMs,
      watchedAfterReturnMs,
      controllerLooks: judged.looks,
      offlineAfter: judged.offline,
      removedAfter: judged.removed,
      gatewaysBefore,
      gatewayChanges: judged.gatewayChanges,
      dataPlaneChanges,
      dataPlaneSamples: samples,
      agentsSawOutage: [...sawOutage].sort(),
      controllerMoves,
      changeToAllMs,
    };
  } finally {
    // On any failure: the control plane runs again, the hosts reach it, and nothing keeps pinging.
    if (pids && kind === "freeze") thawControlPlane(pids);
    await labCutAgentsFromNats(opts, false).catch(() => {});
    sampling = false;
    await sampler.catch(() => {});
    await streams.stop().catch(() => undefined);
  }
}

/** Pings every 0.2 s: across every ordered pair of the outage hosts (overlay), and to the site routers. */
export const PING_INTERVAL_S = 0.2;

export interface OutagePings {
  /** Replies between hosts so far (streams still running). */
  pairReplies(): number;
  /** Stops every stream (safe to call twice) and counts: host pairs first, then the site routers. */
  stop(): Promise<{ pings: PairFigures[]; sitePings: PairFigures[] }>;
}

/** Starts a ping stream across every ordered pair of hosts over the overlay and from SITE_PROBES to each site router. */
export function startOutagePings(lab: OutageLab): OutagePings {
  const pairStreams: { to: string; stream: PingStream }[] = [];
  for (const a of OUTAGE_HOSTS) for (const b of OUTAGE_HOSTS) if (a !== b) pairStreams.push({ to: b, stream: startPingStream(lab.opts, a, lab.addresses.get(b)!, PING_INTERVAL_S) });
  const siteStreams = SITE_PROBES.map((p) => ({ to: p.to, stream: startPingStream(lab.opts, p.from, p.to, PING_INTERVAL_S) }));
  let stopped: Promise<{ pings: PairFigures[]; sitePings: PairFigures[] }> | undefined;
  return {
    pairReplies: () => pairStreams.reduce((n, s) => n + s.stream.count().replies, 0),
    stop: () =>
      (stopped ??= (async () => {
        const counts = await Promise.all([...pairStreams, ...siteStreams].map(async (s) => ({ from: s.stream.from, to: s.to, address: s.stream.address, ...(await s.stream.stop()) })));
        const figures = counts.map(({ from, to, address, sent, replies, lost }): PairFigures => ({ from, to, address, sent, replies, lost: lost.length, lostSeqs: lost.slice(0, 20) }));
        return { pings: figures.slice(0, pairStreams.length), sitePings: figures.slice(pairStreams.length) };
      })()),
  };
}

export interface Judgements {
  /** Looks the controller answered. */
  looks: number;
  /** `name=status at +ms` for every node seen with a status other than online. */
  offline: string[];
  /** Nodes listed before that were missing at some look. */
  removed: string[];
  /** `site: a → b at +ms` for every gateway change. */
  gatewayChanges: string[];
}

/** How long the controller's judgements are watched: two offline periods, and 2 s. */
export const WATCH_MS = 2 * OFFLINE_AFTER_S * 1000 + 2000;

/**
 * Every 500 ms from `from` (epoch ms) until `window.until` (read at every look, so the caller may
 * extend it; default WATCH_MS after `from`): the controller's node list and the gateway of every
 * site, compared with `nodesBefore` and `gatewaysBefore`. Looks the controller does not answer
 * (not up yet) are skipped.
 */
export async function watchJudgements(lab: OutageLab, nodesBefore: readonly NodeView[], gatewaysBefore: Record<string, string | null>, from: number, window = { until: from + WATCH_MS }): Promise<Judgements> {
  const offline = new Set<string>();
  const removed = new Set<string>();
  const gatewayChanges: string[] = [];
  let looks = 0;
  let lastGateways = gatewaysBefore;
  while (Date.now() < window.until) {
    const look = await Promise.all([lab.client.listNodes(), gateways(lab)]).catch(() => undefined);
    if (look) {
      const [nodes, gw] = look;
      const at = Date.now() - from;
      looks++;
      for (const n of nodes) if (n.status !== "online") offline.add(`${n.name}=${n.status} at +${at} ms`);
      for (const n of nodesBefore) if (!nodes.some((x) => x.nodeId === n.nodeId)) removed.add(n.name);
      for (const site of Object.keys({ ...lastGateways, ...gw })) if (gw[site] !== lastGateways[site]) gatewayChanges.push(`${site}: ${lastGateways[site]} → ${gw[site]} at +${at} ms`);
      lastGateways = gw;
    }
    await sleep(500);
  }
  return { looks, offline: [...offline], removed: [...removed], gatewayChanges };
}

const POLICY_NAME = "outage-hosts";

/** A change every host's policy sees: the hosts' identity allowed to itself on every protocol, added or (when present) removed. */
export async function togglePolicy(client: ControllerClient): Promise<void> {
  if ((await client.listPolicies()).some((p) => p.name === POLICY_NAME)) {
    await client.deletePolicy(POLICY_NAME);
    return;
  }
  await client.applyPolicy({ name: POLICY_NAME, rules: [{ action: "allow", from: [{ namespace: "infra", serviceAccount: "host" }], to: [{ namespace: "infra", serviceAccount: "host" }] }] });
}

/** One line per figure group, for the test's and the benchmark's report. */
export function describeOutage(f: OutageFigures): string[] {
  const pairs = f.pings.map((p) => `${p.from}→${p.to} ${p.replies}/${p.sent}`).join(", ");
  const sites = f.sitePings.map((p) => `${p.from}→${p.address} ${p.replies}/${p.sent}`).join(", ");
  return [
    `${f.kind} ${f.outageSeconds} s: ${f.pingsSent} pings sent, ${f.pingsLost} lost (every 0.2 s, from 3 s before the outage to ${Math.round(f.watchedAfterReturnMs / 1000)} s after the return)`,
    `  hosts (replies/sent): ${pairs}`,
    `  site routers: ${sites}`,
    `  API back ${f.apiBackMs} ms, hosts let back to NATS ${f.agentsHeldBackMs} ms, every agent connected and in sync ${f.agentsBackMs} ms after the return; policy change after the outage on every agent in ${f.changeToAllMs} ms`,
    `  after the return: offline ${JSON.stringify(f.offlineAfter)}, removed ${JSON.stringify(f.removedAfter)}, gateway changes ${JSON.stringify(f.gatewayChanges)} (gateways ${JSON.stringify(f.gatewaysBefore)}), data-plane changes ${f.dataPlaneChanges.length} in ${f.dataPlaneSamples} samples, controller moves ${f.controllerMoves.length}; agents that reported the outage: ${f.agentsSawOutage.join(", ") || "none"}`,
  ];
}

/** Reads the controller's log (for a failure message). */
export async function controllerLogTail(lab: OutageLab, lines = 30): Promise<string> {
  return (await readFile(join(lab.cluster.logDir, "controller.log"), "utf8").catch(() => "")).split("\n").slice(-lines).join("\n");
}
