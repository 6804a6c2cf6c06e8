/**
 * `weft lab up | down | status | exec | demo`: the multi-cloud lab on this machine.
 * `demo` brings up the lab, the controller and an agent on every host, and
 * prints the mesh until interrupted (or once, with --once, then tears down).
 *
 * The lab (@weft/lab, in the repository's test/ folder) is an optional dependency of the CLI:
 * program.ts imports this module only when a lab command runs, and says so when a build of weft
 * was installed without it.
 */
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { flowRows, readPinnedFlows } from "@weft/agent/flows";
import { loadState, STATE_FILE, STATUS_FILE, type AgentStatus } from "@weft/agent/local";
import { MetadataProvider, type ControllerClient } from "@weft/protocol";
import { LAB_ONPREM_KEY_LABELS, LAB_ONPREM_KEY_SITE, LabCluster, terminateLabInstance, type RunningClouds, hostPinDir, labDir, labDown, labExec, labStatus, labUp, labWorkloads, echoProbe, readOverlayAddress, hostDir, repoRoot, startEchoServer, type EchoServer, type LabOptions } from "@weft/lab";
import { UsageError } from "../errors.js";
import { createLogger } from "../log.js";
import { formatTable, printJson, printTable } from "../output.js";
import { parsePolicyFile } from "./policy.js";
import { parseServiceFile } from "./services.js";
import { untilSignal } from "./signals.js";
import { meshView, watchMesh, NODES_TIMEOUT_MS, type MeshSources } from "./lab-mesh-view.js";

/** The options of `weft lab` itself, given to every subcommand. */
export interface LabFlags {
  prefix?: string;
  natSites?: boolean;
  /** `3`: controller hosts ctl-1..3, each a nats-server of one cluster and a controller. */
  controllers?: string;
}

const labOptions = (f: LabFlags): LabOptions => ({
  ...(f.prefix ? { prefix: f.prefix } : {}),
  ...(f.natSites || f.controllers ? { layout: { ...(f.natSites ? { natSites: true } : {}), ...(f.controllers ? { controllers: labControllers(f.controllers) } : {}) } } : {}),
  logger: createLogger(process.env.WEFT_LOG_LEVEL ?? "warn").child({ component: "lab" }),
});

function labControllers(v: string): 1 | 3 {
  if (v === "1" || v === "3") return Number(v) as 1 | 3;
  throw new UsageError(`--controllers ${JSON.stringify(v)}: want 1 (one controller with its embedded NATS) or 3 (ctl-1..3, a NATS cluster)`);
}

export async function labUpCommand(f: LabFlags): Promise<void> {
  const r = await labUp(labOptions(f));
  process.stdout.write(`lab up: ${r.changes.length} changes in ${r.durationMs} ms\n`);
}

export async function labDownCommand(f: LabFlags): Promise<void> {
  const r = await labDown(labOptions(f));
  process.stdout.write(`lab down: removed ${r.removed.length} namespaces in ${r.durationMs} ms\n`);
}

export async function labStatusCommand(o: { json?: boolean }, f: LabFlags): Promise<void> {
  const hosts = await labStatus(labOptions(f));
  if (o.json) return printJson(hosts);
  printTable(
    ["HOST", "SITE", "NETNS", "PRIVATE", "PUBLIC", "OVERLAY", "UP"],
    hosts.map((h) => [h.name, h.site, h.netns, h.underlay.private, h.underlay.public ?? "-", h.overlay ?? "-", h.up ? "yes" : "no"]),
  );
}

export async function labExecCommand(host: string, argv: string[], f: LabFlags): Promise<void> {
  const r = await labExec(labOptions(f), host, argv, { stdio: "inherit", timeoutMs: 24 * 3600_000 });
  process.exitCode = r.exitCode ?? 1;
}

export async function labDemoCommand(o: { once?: boolean; timeout: string }, f: LabFlags): Promise<void> {
  await runDemo(labOptions(f), { once: Boolean(o.once), timeoutMs: Number(o.timeout) * 1000 });
}

async function runDemo(opts: LabOptions, o: { once: boolean; timeoutMs: number }): Promise<void> {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const cluster = new LabCluster({ ...opts, clouds: true });
  const interrupted = untilSignal();
  let failed = false;
  try {
    say("==> building the lab: aws, azure, gcp (1:1 NAT) and onprem (masquerade)");
    // The demo starts from nothing: a previous run's lab and kept state are cleared first.
    await labDown(opts);
    await rm(labDir(opts), { recursive: true, force: true });
    await labUp(opts);
    say("==> starting the AWS, Azure and GCP simulators in the gateways: every cloud host is an instance there");
    const clouds = await cluster.startClouds();
    say(`==> starting the controller in the lab's ctl namespace (${cluster.controllerUrl}), inventory from the three clouds and an on-prem file`);
    // aws allows plaintext inside the site: its workloads talk over eBPF VXLAN, everything else over WireGuard.
    await cluster.startController(["--plaintext-site", "aws", "--inventory-config", clouds.inventoryConfigPath]);
    const client = await cluster.client();
    await client.syncInventory();
    process.stdout.write(`${await inventoryTable(client)}\n`);
    // Cloud hosts join with no shared secret: their instance identity (from the metadata service)
    // must be in the inventory and match a policy. Identity labels come from the instances' tags.
    for (const provider of MetadataProvider.options) {
      // The site comes from the instance's network (the lab's inventory `sites`); the workload identities from the instance's tags.
      await client.applyEnrollmentPolicy({ name: `lab-${provider}`, selector: { provider, tags: { env: "lab" } } });
    }
    const key = await client.createJoinKey({
      reusable: true,
      ttlSeconds: 3600,
      description: "lab demo: on-prem (no cloud metadata)",
      labels: { ...LAB_ONPREM_KEY_LABELS },
      site: LAB_ONPREM_KEY_SITE,
    });
    say(`\n==> enrollment policies for aws, azure, gcp (instances tagged env=lab join with no key); join key ${key.id} for on-prem; starting ${cluster.topology.hosts.length} agents`);
    const started = Date.now();
    const onpremLike = new Set(cluster.topology.sites.filter((s) => s.kind === "onprem").map((s) => s.name));
    await Promise.all(cluster.topology.hosts.map((h) => cluster.startAgent(h.name, onpremLike.has(h.site) ? key.key : undefined)));
    await Promise.race([cluster.waitForFullMesh(o.timeoutMs), interrupted.then(() => Promise.reject(new Error("interrupted")))]);
    say(`==> full mesh: every host has a handshake with every other host (${((Date.now() - started) / 1000).toFixed(1)} s after agent start)\n`);
    process.stdout.write(`${(await meshView(await meshSources(cluster))).text}\n`);
    if (onpremLike.size > 1) await pathsDemo(cluster, say);
    await policyDemo(cluster, opts, say);
    await servicesDemo(cluster, opts, client, say);
    await siteRoutesDemo(cluster, opts, client, say);
    await inventoryDemo(cluster, clouds, client, say);
    if (!o.once) {
      say(`\nlogs: ${cluster.logDir}    admin: weft nodes list --controller-state-dir ${cluster.controllerStateDir}`);
      say("refreshing every 5 s; Ctrl-C tears everything down");
      // The view outlives the control plane: a frozen or dead controller shows as unreachable and the
      // mesh is shown from the hosts until it answers again (lab-mesh-view.ts).
      await watchMesh({ sources: await meshSources(cluster), intervalMs: 5000, stopped: interrupted, write: (text) => process.stdout.write(text) });
    }
  } catch (err) {
    failed = true;
    say(`demo failed: ${(err as Error).message}\nlogs are in ${cluster.logDir} (kept until the next run)`);
  } finally {
    say("==> tearing down");
    await cluster.stopAll();
    // On failure the host dirs (agent state, logs) stay for a look; the next run clears them.
    await labDown({ ...opts, keepHostDirs: failed });
  }
  if (failed) process.exitCode = 1;
}

/**
 * The enlarged lab's hosts behind NAT: how each reaches the others (direct, punched, or through
 * the relay), as their agents report it. Waits up to a minute for the cone-NAT pairs to punch through.
 */
async function pathsDemo(cluster: LabCluster, say: (line: string) => void): Promise<void> {
  const natted = cluster.topology.hosts.filter((h) => !h.publicAddress).map((h) => h.name);
  say(`\n==> paths of the hosts behind NAT (${natted.join(", ")}): punched direct between port-keeping NATs, relayed where a NAT picks a port per destination`);
  const rows = async () => {
    const out: string[][] = [];
    for (const h of natted) {
      const status = await readFile(join(cluster.agents.get(h)!.stateDir, "status.json"), "utf8").then((t) => JSON.parse(t) as { paths?: { peer: string; path: string; via?: string; rttMs?: number; endpoint?: string }[] }).catch(() => ({ paths: [] }));
      for (const p of status.paths ?? []) out.push([h, p.peer, p.path === "relay" ? `relay via ${p.via ?? "?"}` : p.path, p.endpoint ?? "-", p.rttMs === undefined ? "-" : `${p.rttMs.toFixed(2)} ms`]);
    }
    return out;
  };
  const deadline = Date.now() + 60_000;
  let table = await rows();
  while (Date.now() < deadline && table.some((r) => natted.includes(r[1]!) && r[2] === "none")) {
    await new Promise((r) => setTimeout(r, 1000));
    table = await rows();
  }
  process.stdout.write(`${formatTable(["HOST", "PEER", "PATH", "ENDPOINT", "RTT"], table)}\n`);
}

/** Workloads, the example policy applied, probes that show what it allows, and the counters that saw them. */
async function policyDemo(cluster: LabCluster, opts: LabOptions, say: (line: string) => void): Promise<void> {
  const workloads = labWorkloads(cluster.topology);
  say(`\n==> ${workloads.length} workloads (network namespaces off the hosts), each with its own SPIFFE identity`);
  const addresses = new Map<string, string>();
  await waitForWorkloads(cluster, workloads.length, addresses);
  const client = await cluster.client();
  const ids = new Map((await client.listIdentities()).map((i) => [i.spiffeId, i.id]));
  process.stdout.write(
    `${formatTable(
      ["WORKLOAD", "HOST", "ADDRESS", "IDENTITY", "ID"],
      workloads.map((w) => {
        const spiffe = `spiffe://weft.internal/ns/${w.namespace}/sa/${w.serviceAccount}`;
        return [w.node, w.host.name, addresses.get(w.node) ?? "-", spiffe, String(ids.get(spiffe) ?? "-")];
      }),
    )}\n`,
  );
  const servers: EchoServer[] = [];
  try {
    servers.push(...(await Promise.all(workloads.map((w) => startEchoServer(opts, w.node, { port: 7000 })))));
    const file = join(repoRoot(), "examples", "shop-policy.yaml");
    say(`\n==> applying ${file}: web -> api, api and ledger -> db on tcp/7000; web never reaches db`);
    for (const p of parsePolicyFile(await readFile(file, "utf8"), file)) await client.applyPolicy(p);
    await new Promise((r) => setTimeout(r, 1000));
    const probes: [string, string, string][] = [
      ["aws-1-web", "aws-2-api", "allow web -> api (same site: VXLAN)"],
      ["gcp-1-web", "azure-2-api", "allow web -> api (across clouds)"],
      ["aws-2-api", "azure-1-db", "allow api -> db"],
      ["onprem-1-ledger", "gcp-2-db", "allow ledger -> db (from on-prem)"],
      ["aws-1-web", "azure-1-db", "deny web -> db wins"],
      ["onprem-1-ledger", "azure-2-api", "api is default-deny: no rule for ledger"],
      ["gcp-2-db", "aws-1-web", "web has no policy: open"],
    ];
    const rows = await Promise.all(
      probes.map(async ([from, to, why]) => {
        const r = await echoProbe(opts, from, { address: addresses.get(to) ?? "", port: 7000, protocol: "tcp", timeoutMs: 1500 });
        return [from, to, `tcp/7000`, r.ok ? "allowed" : "dropped", why];
      }),
    );
    process.stdout.write(`${formatTable(["FROM", "TO", "PORT", "RESULT", "WHY"], rows)}\n`);
    const state = await loadState(cluster.agents.get("azure-1")!.stateDir);
    const flows = flowRows(readPinnedFlows(hostPinDir(opts, "azure-1")), state?.applied?.peers ?? []).filter((f) => f.source.includes("/ns/shop/"));
    say(`\n==> weft flows on azure-1 (counters per identity pair, from the pinned eBPF map)`);
    process.stdout.write(
      `${formatTable(["SOURCE", "DESTINATION", "PACKETS", "BYTES", "DROPS"], flows.map((f) => [f.source, f.destination, String(f.packets), String(f.bytes), Object.entries(f.drops).map(([k, v]) => `${k}=${v}`).join(" ") || "-"]))}\n`,
    );
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
}

async function waitForWorkloads(cluster: LabCluster, want: number, addresses: Map<string, string>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    addresses.clear();
    for (const h of cluster.topology.hosts) {
      const state = await loadState(cluster.agents.get(h.name)!.stateDir).catch(() => undefined);
      for (const w of state?.workloads ?? []) addresses.set(`${h.name}-${w.name}`, w.address);
    }
    if (addresses.size === want) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`only ${addresses.size} of ${want} workloads got an address within 60 s; see the agent logs`);
}

/**
 * A federated service: `api.shop` with backends in two clouds (the api workloads on aws-2 and
 * azure-2), reached by name from the web workload in a third (gcp-1), balanced at connect time by
 * gcp-1's agent; then what `weft service list --json` says of each backend (site, health).
 */
async function servicesDemo(cluster: LabCluster, opts: LabOptions, client: ControllerClient, say: (line: string) => void): Promise<void> {
  const file = join(repoRoot(), "examples", "shop-service.yaml");
  say(`\n==> a federated service: applying ${file} (api.shop: the api workloads in aws and azure, round robin, health-checked)`);
  const servers: EchoServer[] = [];
  try {
    for (const node of ["aws-2-api", "azure-2-api"]) servers.push(await startEchoServer(opts, node, { port: 7000, name: node }));
    const applied = [];
    for (const svc of parseServiceFile(await readFile(file, "utf8"), file)) applied.push(await client.applyService(svc));
    const api = applied.find((a) => a.spec.name === "api")!;
    const name = `api.shop.svc.weft.internal`;
    say(`==> ${name} has the VIP ${api.vip}; gcp-1-web (in gcp) connects to it by name, 10 times`);
    const deadline = Date.now() + 20_000;
    let first = await echoProbe(opts, "gcp-1-web", { address: name, port: 80, protocol: "tcp", timeoutMs: 1500 });
    while (!first.ok && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250)); // the service reaches gcp-1's agent within a moment
      first = await echoProbe(opts, "gcp-1-web", { address: name, port: 80, protocol: "tcp", timeoutMs: 1500 });
    }
    const rows: string[][] = [];
    for (let i = 0; i < 10; i++) {
      const r = i === 0 ? first : await echoProbe(opts, "gcp-1-web", { address: name, port: 80, protocol: "tcp", timeoutMs: 1500 });
      rows.push(["gcp-1-web", `${name}:80`, r.ok ? (r.from.name ?? "?") : `no answer (${r.error})`, r.ok ? `${r.rttMs} ms` : "-"]);
    }
    process.stdout.write(`${formatTable(["FROM", "TO", "ANSWERED BY", "TIME"], rows)}\n`);
    await new Promise((r) => setTimeout(r, 2500)); // the agents report connection counts every 2 s
    const views = await client.listServices();
    say(`\n==> weft service list --json (each backend's site and health)`);
    const slim = views.map((v) => ({ service: `${v.service.namespace}/${v.service.name}`, vip: v.vip, dnsName: v.dnsName, backends: v.backends.map((b) => ({ address: b.address, node: b.node, workload: b.workload, site: b.site, health: b.health, connects: b.connects })) }));
    process.stdout.write(`${JSON.stringify(slim, null, 2)}\n`);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
}

/** Site routes: gcp-1 (instance tag) and onprem-1 (key label) carry their sites' networks for the other sites. */
async function siteRoutesDemo(cluster: LabCluster, opts: LabOptions, client: ControllerClient, say: (line: string) => void): Promise<void> {
  say(`\n==> site routes: each site's networks from the inventory, advertised by its weft:gateway node`);
  const deadline = Date.now() + 20_000;
  let view = await client.inventory();
  const advertised = (site: string) => view.siteRoutes.some((r) => r.site === site && r.gateway);
  while (Date.now() < deadline && !(advertised("onprem") && advertised("gcp"))) {
    await new Promise((r) => setTimeout(r, 250));
    view = await client.inventory();
  }
  process.stdout.write(
    `${formatTable(["SITE", "ROUTES", "GATEWAY", "ADVERTISED"], view.siteRoutes.map((r) => [r.site, r.cidrs.join(","), r.gateway?.name ?? "-", r.advertised.join(",") || "-"]))}\n`,
  );
  const server = await startEchoServer(opts, "gw-gcp", { port: 7100 });
  try {
    const probes: [string, string, string][] = [
      ["aws-1", "10.30.0.1", "gw-gcp's LAN address (no agent) via gcp-1"],
      ["onprem-1", "10.30.0.1", "from behind on-prem NAT via gcp-1"],
    ];
    const rows: string[][] = [];
    for (const [from, address, why] of probes) {
      let r = await echoProbe(opts, from, { address, port: 7100, protocol: "tcp", timeoutMs: 1500 });
      for (let i = 0; i < 20 && !r.ok; i++) {
        await new Promise((res) => setTimeout(res, 250)); // the routes reach every agent within a second or so
        r = await echoProbe(opts, from, { address, port: 7100, protocol: "tcp", timeoutMs: 1500 });
      }
      rows.push([from, `${address}:7100`, r.ok ? `answered, seen from ${r.from.address}` : `no answer (${r.error})`, why]);
    }
    const ping = await labExec(opts, "azure-1", ["ping", "-n", "-c", "1", "-W", "2", "192.168.50.1"], { timeoutMs: 10_000 });
    rows.push(["azure-1", "192.168.50.1 (ping)", ping.exitCode === 0 ? "answered" : "no answer", "gw-onprem's LAN address via onprem-1"]);
    process.stdout.write(`${formatTable(["FROM", "TO", "RESULT", "PATH"], rows)}\n`);
  } finally {
    await server.close();
  }
}

/** Inventory-driven membership: an instance terminated in its cloud leaves the mesh with the next sync. */
async function inventoryDemo(cluster: LabCluster, clouds: RunningClouds, client: ControllerClient, say: (line: string) => void): Promise<void> {
  const host = cluster.topology.hosts.find((h) => h.name === "gcp-2");
  if (!host) return;
  const node = (await client.listNodes()).find((n) => n.name === host.name);
  say(`\n==> terminating gcp-2's instance in the GCP simulator, then syncing the inventory`);
  await terminateLabInstance(clouds, host);
  const t0 = Date.now();
  const result = await client.syncInventory();
  const removed = result.accounts.flatMap((a) => a.removed.map((r) => `${r.nodeId} (${r.reason}: ${r.evidence})`));
  const others = cluster.topology.hosts.filter((h) => h.name !== host.name).map((h) => h.name);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const still = await Promise.all(others.map(async (h) => (await cluster.handshakes(h)).has(node?.wireguardPublicKey ?? "")));
    if (!still.some(Boolean)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  say(`==> removed by the sync: ${removed.join(", ") || "nothing"}; gone from every peer ${Date.now() - t0} ms after the sync started\n`);
  await cluster.stopAgent(host.name);
  process.stdout.write(`${(await meshView(await meshSources(cluster))).text}\n`);
}

async function inventoryTable(client: ControllerClient): Promise<string> {
  const view = await client.inventory();
  return formatTable(
    ["PROVIDER", "ACCOUNT", "REGION", "INSTANCE", "NAME", "PRIVATE", "PUBLIC", "STATE"],
    view.instances.map((i) => [i.provider, i.account, i.region, i.id, i.name, i.privateIps.join(","), i.publicIps.join(",") || "-", i.state]),
  );
}

/** The demo's view sources: the controller over its admin socket (3 s per request), each host's interface and agent files. */
async function meshSources(cluster: LabCluster): Promise<MeshSources> {
  const client = await cluster.client({ timeoutMs: NODES_TIMEOUT_MS });
  return {
    hosts: cluster.topology.hosts,
    nodes: () => client.listNodes(),
    handshakes: (host) => cluster.handshakes(host),
    local: async (host) => {
      const stateDir = join(hostDir(cluster.opts, host), "agent");
      const status = JSON.parse(await readFile(join(stateDir, STATUS_FILE), "utf8").catch(() => "{}")) as Partial<AgentStatus>;
      const overlay = await readOverlayAddress(join(stateDir, STATE_FILE));
      return {
        overlayAddress: overlay ?? undefined,
        nats: typeof status.nats === "string" ? status.nats : undefined,
        stale: typeof status.stale === "boolean" ? status.stale : undefined,
        appliedRevision: typeof status.appliedRevision === "number" ? status.appliedRevision : undefined,
      };
    },
  };
}
