/**
 * End-to-end tests of connectivity across NATs on the enlarged lab (layout `natSites`, `overlap`
 * and smaller MTUs): nine hosts — the three clouds (1:1 NAT; aws-2 tagged a relay), onprem and
 * branch (masquerading NATs that keep ports: endpoint-independent), cgnat (a NAT that picks a
 * random port per destination: endpoint-dependent) — with aws and azure on the same 10.10.0.0/16
 * and branch, cgnat and gcp at MTU 1280, 1380 and 1460. The cloud simulators run in the gateways
 * and cloud hosts present their instance identity (their agents follow their public address).
 *
 * One lab (prefix `wtn`), in order: every host enrolls → paths: onprem↔branch punched direct,
 * cgnat↔onprem and cgnat↔branch relayed via aws-2, everything else direct, as `weft status` and
 * `weft nodes list` report them → every ordered pair pings → the relay sees only WireGuard → the
 * cgnat NAT keeps ports: its pairs go direct; randomizes again: back to the relay → gcp-2's public
 * address moves: peers follow, ping loss measured → overlapping 10.10.0.0/16 remapped and reached
 * both ways → 1 MiB TCP intact over 1280/1380/1460 paths → 30 % loss on branch's link: handshakes
 * complete and traffic flows. Figures are printed at the end. Needs root; skipped otherwise.
 */
import { describe, expect, it } from "vitest";
import type { ControllerClient, NodeView } from "@weft/protocol";
import { LabCluster, labExec, labSetLoss, labSetNat, labTopology, moveLabInstanceAddress, repoRoot, type LabOptions, type RunningClouds } from "@weft/lab";
import { hostInterface, mapLimit, ping, readAgentStatus, sleep, spread, startTcpSink, tcpTransfer, waitUntil, wgDump, type TcpSink } from "./mesh.js";
import { capture, occurrences, pingCount, startEcho } from "./traffic.js";
import { labSuite } from "./lab-suite.js";

const PREFIX = process.env.WEFT_E2E_NAT_PREFIX ?? "wtn";
const opts: LabOptions = { prefix: PREFIX, layout: { natSites: true, overlap: true, mtu: { branch: 1280, cgnat: 1380, gcp: 1460 } } };
const topology = labTopology(opts);
const HOSTS = topology.hosts.map((h) => h.name);
const NATTED = ["onprem-1", "branch-1", "cgnat-1"];
const RELAY = "aws-2";
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("e2e nat: skipped: needs root (network namespaces, WireGuard)");

const suite = labSuite("nat", opts);
const { note } = suite;

/** The path a host's agent reports to a peer (status.json), e.g. `direct`, `relay via aws-2`, `none`. */
type PathText = string;

describe.skipIf(!isRoot)("e2e nat", () => {
  let cluster: LabCluster;
  let client: ControllerClient;
  let clouds: RunningClouds;
  let startedAt = 0;
  let nodes = new Map<string, NodeView>();

  const stateDir = (host: string) => cluster.agents.get(host)!.stateDir;
  const overlay = (host: string) => ({ name: host, address: nodes.get(host)!.overlayAddress });
  /** host → peer name → path, from the host's status.json. */
  const pathsOf = async (host: string): Promise<Map<string, { path: PathText; rttMs: number | undefined }>> => {
    const status = await readAgentStatus(stateDir(host));
    return new Map((status?.paths ?? []).map((p) => [p.peer, { path: p.path === "relay" ? `relay via ${p.via}` : p.path, rttMs: p.rttMs }]));
  };
  const pathBetween = async (a: string, b: string) => (await pathsOf(a)).get(b)?.path;
  const both = async (a: string, b: string, want: PathText) => (await pathBetween(a, b)) === want && (await pathBetween(b, a)) === want;
  /** The path every pair should take: relayed where a side's NAT maps per destination and the other is NAT'd too. */
  const expected = (a: string, b: string): PathText => {
    const natted = (h: string) => NATTED.includes(h);
    if (natted(a) && natted(b) && (a === "cgnat-1" || b === "cgnat-1")) return `relay via ${RELAY}`;
    return "direct";
  };

  suite.hooks({
    cluster: () => new LabCluster({ ...opts, clouds: true }),
    setup: async (c) => {
      cluster = c;
      clouds = await cluster.startClouds();
      await cluster.startController(["--inventory-config", clouds.inventoryConfigPath]);
      client = await cluster.client();
      await client.syncInventory();
      const key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "e2e nat", labels: { "weft:workload-namespaces": "shop" } });
      startedAt = Date.now();
      // Three at a time, each batch enrolled before the next: on a loaded machine an enrollment
      // answered after the agent's 10 s timeout is retried and refused as already bound.
      for (let i = 0; i < HOSTS.length; i += 3) {
        const batch = HOSTS.slice(i, i + 3);
        await Promise.all(batch.map((h) => cluster.startAgent(h, key.key)));
        await waitUntil(`${batch.join(", ")} enrolled`, 180_000, async () => {
          const names = new Set((await client.listNodes()).map((n) => n.name));
          for (const h of batch) if (cluster.agents.get(h)?.process?.exitCode != null) throw new Error(`the agent on ${h} exited; see ${cluster.agents.get(h)!.logPath}`);
          return batch.every((h) => names.has(h));
        }, 500);
      }
    },
  });

  it("nat - every host enrolls; a relayed path works within seconds and the cone-NAT pair punches through to a direct path", async () => {
    expect((await client.listNodes()).length, "nodes enrolled").toBe(HOSTS.length);
    nodes = new Map((await client.listNodes()).map((n) => [n.name, n]));
    const relayed = await waitUntil("cgnat-1 and onprem-1 relayed both ways", 120_000, () => both("cgnat-1", "onprem-1", `relay via ${RELAY}`), 200);
    const relayedAt = Date.now();
    const p = await ping(opts, "cgnat-1", overlay("onprem-1"));
    expect(p.ok, `ping cgnat-1 -> onprem-1 over the relay: ${p.output}`).toBe(true);
    // From the later enrollment of the pair: before it, the pair does not exist.
    const enrolled = (a: string, b: string) => Math.max(Date.parse(nodes.get(a)!.enrolledAt), Date.parse(nodes.get(b)!.enrolledAt));
    note(`first relayed path (cgnat-1 <-> onprem-1 via ${RELAY}) reported both ways ${((relayedAt - enrolled("cgnat-1", "onprem-1")) / 1000).toFixed(1)} s after the pair's later enrollment (${(relayed / 1000).toFixed(1)} s after all nine were enrolled; the nine enrolled in batches over ${((Date.now() - startedAt) / 1000).toFixed(0)} s on this machine)`);
    await waitUntil("onprem-1 <-> branch-1 direct", 120_000, () => both("onprem-1", "branch-1", "direct"), 200);
    note(`onprem-1 <-> branch-1 (two masquerading NATs) punched direct ${((Date.now() - enrolled("onprem-1", "branch-1")) / 1000).toFixed(1)} s after the pair's later enrollment`);
    const onprem = nodes.get("onprem-1")!;
    const fresh = (await client.getNode(onprem.nodeId)).endpoints;
    expect(fresh.mapping, "onprem's NAT mapping as public peers see it").toBe("endpoint-independent");
    expect(fresh.reflexive?.[0], "onprem's reflexive endpoint").toBe("198.19.4.2:51820");
    const cg = (await client.getNode(nodes.get("cgnat-1")!.nodeId)).endpoints;
    expect(cg.mapping, `cgnat's NAT mapping (reflexive ${cg.reflexive?.join(", ")})`).toBe("endpoint-dependent");
  });

  it("nat - the full mesh reports each pair's path: direct for cone NATs and public nodes, relay via aws-2 for the random-port site", async () => {
    await cluster.waitForFullMesh(120_000);
    const wrong: string[] = [];
    await waitUntil("every pair on its expected path", 60_000, async () => {
      wrong.length = 0;
      for (const a of HOSTS) {
        const paths = await pathsOf(a);
        for (const b of HOSTS) if (a !== b && paths.get(b)?.path !== expected(a, b)) wrong.push(`${a} -> ${b}: ${paths.get(b)?.path ?? "missing"}, want ${expected(a, b)}`);
      }
      return wrong.length === 0;
    }, 500).catch(() => undefined);
    expect(wrong, "pairs not on their expected path").toEqual([]);
    const rtts = { direct: [] as number[], relay: [] as number[] };
    for (const a of HOSTS) for (const [b, p] of await pathsOf(a)) if (p.rttMs !== undefined) (expected(a, b) === "direct" ? rtts.direct : rtts.relay).push(p.rttMs);
    note(`agent-measured tunnel RTT: direct ${spread(rtts.direct)}; relayed ${spread(rtts.relay)}`);

    // The controller's view (heartbeats), as `weft nodes list --paths` prints it.
    const list = await client.listNodes();
    const byKey = new Map(list.map((n) => [n.wireguardPublicKey, n.name]));
    const cgnat = list.find((n) => n.name === "cgnat-1")!;
    const reported = new Map((cgnat.peers ?? []).map((p) => [byKey.get(p.publicKey), p]));
    expect(reported.get("onprem-1")?.path, "cgnat-1 -> onprem-1 in the controller's node view").toBe("relay");
    expect(reported.get("onprem-1")?.via, "relay node id").toBe(nodes.get(RELAY)!.nodeId);
    expect(reported.get("aws-1")?.path, "cgnat-1 -> aws-1").toBe("direct");
    const cli = await labExec(opts, "ctl", [process.execPath, `${repoRoot()}/cli/dist/main.js`, "nodes", "list", "--paths", "--controller-state-dir", cluster.controllerStateDir], { timeoutMs: 180_000 });
    expect(cli.stdout, `weft nodes list --paths: ${cli.stderr}`).toMatch(new RegExp(`cgnat-1\\s+onprem-1\\s+relay via ${RELAY}`));
    const status = await labExec(opts, "cgnat-1", [process.execPath, `${repoRoot()}/cli/dist/main.js`, "status", "--state-dir", stateDir("cgnat-1")], { timeoutMs: 180_000 });
    expect(status.stdout, `weft status on cgnat-1: ${status.stderr}`).toMatch(new RegExp(`onprem-1\\s+onprem\\s+\\S+\\s+relay via ${RELAY}`));
  });

  it("nat - every ordered pair of the nine hosts pings over its path", async () => {
    const pairs = HOSTS.flatMap((a) => HOSTS.filter((b) => b !== a).map((b) => [a, b] as const));
    const results = await mapLimit(pairs, 6, ([a, b]) => ping(opts, a, overlay(b)));
    const bad = results.filter((r) => !r.ok).map((r) => `${r.from} -> ${r.to}: ${r.output}`);
    expect(bad, "failed pings").toEqual([]);
    note(`ping ${pairs.length} ordered pairs: direct ${spread(results.filter((r) => expected(r.from, r.to) === "direct").map((r) => r.rttMs ?? Number.NaN))}; relayed ${spread(results.filter((r) => expected(r.from, r.to) !== "direct").map((r) => r.rttMs ?? Number.NaN))}`);
  });

  it("nat - the relay forwards WireGuard it cannot read: no ping payload or overlay address in clear on the relay's link", async () => {
    const pattern = "c0ffee00deadbeef";
    const cap = await capture(opts, "gw-aws", `lan-${RELAY}`, ["udp"]);
    const got = await pingCount(opts, "cgnat-1", overlay("onprem-1").address, 20, { patternHex: pattern });
    const { raw, text } = await cap.stop();
    expect(got, "pings answered over the relay").toBeGreaterThanOrEqual(18);
    const relayPorts = [...text.matchAll(/10\.10\.0\.12\.(4\d{4})/g)].map((m) => m[1]);
    expect(relayPorts.length, "datagrams to or from the relay's ports on its link").toBeGreaterThan(40);
    expect(occurrences(raw, Buffer.from(pattern, "hex")), "ping payload pattern in the capture").toBe(0);
    const onprem = Buffer.from(overlay("onprem-1").address.split(".").map(Number));
    const cg = Buffer.from(overlay("cgnat-1").address.split(".").map(Number));
    expect(occurrences(raw, Buffer.concat([cg, onprem])), "an inner IP header (cgnat-1 -> onprem-1 addresses) in clear").toBe(0);
  });

  it("nat - when the random-port NAT starts keeping ports, its pairs upgrade to direct; when it randomizes again they fall back to the relay", async () => {
    const t0 = Date.now();
    await labSetNat(opts, "cgnat", "masquerade");
    await waitUntil("cgnat-1 <-> onprem-1 and cgnat-1 <-> branch-1 direct", 90_000, async () => (await both("cgnat-1", "onprem-1", "direct")) && (await both("cgnat-1", "branch-1", "direct")), 200);
    note(`direct path appearing (cgnat NAT keeps ports) -> cgnat-1's NAT'd pairs direct in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect((await ping(opts, "cgnat-1", overlay("branch-1"))).ok, "ping cgnat-1 -> branch-1 direct").toBe(true);
    const t1 = Date.now();
    await labSetNat(opts, "cgnat", "random");
    await waitUntil("cgnat-1 <-> onprem-1 relayed again", 90_000, () => both("cgnat-1", "onprem-1", `relay via ${RELAY}`), 200);
    note(`direct path lost (cgnat randomizes ports again) -> back on the relay in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    await waitUntil("cgnat-1 -> onprem-1 pings over the relay", 20_000, async () => (await ping(opts, "cgnat-1", overlay("onprem-1"))).ok, 500);
  });

  it("nat - gcp-2's public address moves: its peers use the new endpoint within 10 s, no re-enrollment, ping loss measured", async () => {
    const before = nodes.get("gcp-2")!;
    const from = "198.18.3.12";
    const to = "198.18.3.112";
    const watchers = ["azure-1", "onprem-1", "cgnat-1"];
    // 0.1 s pings for 20 s from three peers (a public one, and two behind NAT) while the address moves.
    const pings = watchers.map((w) => labExec(opts, w, ["ping", "-n", "-D", "-i", "0.1", "-W", "1", "-w", "20", overlay("gcp-2").address], { timeoutMs: 40_000 }));
    await sleep(3000);
    const t0 = Date.now();
    await moveLabInstanceAddress(opts, clouds, topology.hosts.find((h) => h.name === "gcp-2")!, from, to);
    // gcp-1 reaches gcp-2 at its private address (same site): the other seven use the public one.
    const peers = HOSTS.filter((x) => x !== "gcp-2" && x !== "gcp-1");
    const followed = await waitUntil("every peer of gcp-2 in another site sends to its new address", 10_000, async () => {
      for (const h of peers) {
        const peer = (await wgDump(opts, h))?.peers.find((p) => p.publicKey === before.wireguardPublicKey);
        if (!peer?.endpoint?.startsWith(`${to}:`)) return false;
      }
      return true;
    }, 100);
    note(`gcp-2's public address moved: all ${peers.length} peers in other sites send to ${to} ${(followed / 1000).toFixed(1)} s later (limit 10 s)`);
    const after = await client.getNode(before.nodeId);
    expect(after.endpoints.public, "gcp-2's node record").toBe(`${to}:51820`);
    expect(after.enrolledAt, "the same enrollment").toBe(before.enrolledAt);
    const results = await Promise.all(pings);
    for (const [i, res] of results.entries()) {
      const times = [...res.stdout.matchAll(/^\[(\d+\.\d+)\].*icmp_seq=(\d+)/gm)].map((m) => Number(m[1]));
      const sent = Number(/(\d+) packets transmitted/.exec(res.stdout)?.[1] ?? 0);
      const gaps = times.slice(1).map((t, j) => t - times[j]!);
      const worst = gaps.length ? Math.max(...gaps) : Number.NaN;
      note(`  ${watchers[i]} -> gcp-2 while it moved: ${sent - times.length}/${sent} pings lost, longest gap ${worst.toFixed(1)} s (move at +${((t0 - startedAt) / 1000).toFixed(0)} s)`);
      expect(worst, `${watchers[i]}: longest gap between replies`).toBeLessThan(10);
    }
  });

  it("nat - overlapping 10.10.0.0/16 in aws and azure: each gets a remapped prefix; a host reaches the other site's 10.10.0.5 remapped and its own directly", async () => {
    await client.syncInventory();
    const remapOf = async (site: string) => (await client.inventory()).siteRoutes.find((r) => r.site === site)?.remaps?.find((m) => m.cidr === "10.10.0.0/16")?.remapped;
    await waitUntil("aws and azure remapped and advertised", 30_000, async () => (await remapOf("aws")) !== undefined && (await remapOf("azure")) !== undefined, 500);
    const aws = (await remapOf("aws"))!;
    const azure = (await remapOf("azure"))!;
    expect(aws, "distinct prefixes").not.toBe(azure);
    note(`overlap remapped: aws 10.10.0.0/16 as ${aws}, azure 10.10.0.0/16 as ${azure}`);
    const at = (prefix: string, host: string) => `${prefix.split(".").slice(0, 2).join(".")}.${host.split(".").slice(2).join(".")}`;
    const list = await labExec(opts, "ctl", [process.execPath, `${repoRoot()}/cli/dist/main.js`, "inventory", "list", "--controller-state-dir", cluster.controllerStateDir], { timeoutMs: 180_000 });
    expect(list.stdout, `weft inventory list: ${list.stderr}`).toContain(`10.10.0.0/16 as ${aws}`);
    expect(list.stdout).toContain(`10.10.0.0/16 as ${azure}`);
    // A machine without an agent at 10.10.0.5 in each site: the aws one answers on 7201, the azure one on 7202.
    const echoes = await Promise.all([startEcho(opts, "gw-aws", [7201]), startEcho(opts, "gw-azure", [7202])]);
    try {
      const probe = async (from: string, address: string, port: number) => {
        const res = await labExec(opts, from, [process.execPath, "-e", `const s=require("node:net").connect(${port},"${address}",()=>{s.end("x")});s.setTimeout(3000,()=>{console.log("timeout");process.exit(0)});s.on("data",d=>{console.log("ok "+d);process.exit(0)});s.on("error",e=>{console.log(e.code);process.exit(0)});`], { timeoutMs: 10_000 });
        return res.stdout.trim();
      };
      const cases: [string, string, number, boolean][] = [
        ["aws-2", "10.10.0.5", 7201, true], // its own site, directly
        ["aws-2", at(azure, "10.10.0.5"), 7202, true], // azure's, remapped
        ["aws-2", "10.10.0.5", 7202, false], // 10.10.0.5 locally is aws's machine, not azure's
        ["azure-2", "10.10.0.5", 7202, true],
        ["azure-2", at(aws, "10.10.0.5"), 7201, true],
        ["gcp-1", at(aws, "10.10.0.5"), 7201, true],
        ["gcp-1", at(azure, "10.10.0.5"), 7202, true],
        ["onprem-1", at(azure, "10.10.0.5"), 7202, true],
      ];
      const results = await waitUntil("remapped routes taken by every agent", 30_000, async () => {
        for (const [from, address, port, want] of cases) if ((await probe(from, address, port)).startsWith("ok") !== want) return false;
        return true;
      }, 1000).catch(() => undefined);
      const got = await Promise.all(cases.map(async ([from, address, port, want]) => `${from} -> ${address}:${port}: ${await probe(from, address, port)} (want ${want ? "ok" : "no answer"})`));
      expect(results, got.join("\n")).toBeDefined();
      note(`remapped reachability: ${cases.length} cases as expected (${got.filter((g) => g.includes(": ok")).length} answered)`);
    } finally {
      await Promise.all(echoes.map((e) => e.stop()));
    }
  });

  it("nat - 1 MiB TCP arrives intact over paths whose underlay MTU is 1280, 1380 and 1460, direct and relayed", async () => {
    for (const [host, want] of [["branch-1", 1200], ["cgnat-1", 1300], ["gcp-1", 1380], ["aws-1", 1420]] as const) {
      expect((await readAgentStatus(stateDir(host)))?.mtu, `${host}'s WireGuard MTU from its underlay`).toBe(want);
    }
    const pairs: [string, string, string][] = [
      ["branch-1", "aws-1", "1280 direct"],
      ["aws-1", "branch-1", "1280 direct"],
      ["cgnat-1", "azure-1", "1380 direct"],
      ["azure-1", "cgnat-1", "1380 direct"],
      ["gcp-1", "onprem-1", "1460 direct"],
      ["onprem-1", "gcp-1", "1460 direct"],
      ["branch-1", "cgnat-1", "1280/1380 relayed"],
      ["cgnat-1", "branch-1", "1380/1280 relayed"],
      // Tunnel MTUs 1420 and 1300: full-size packets are padded to the MTU, not to 16 bytes.
      ["onprem-1", "cgnat-1", "1500/1380 relayed"],
      ["cgnat-1", "onprem-1", "1380/1500 relayed"],
    ];
    const sinks: TcpSink[] = [];
    try {
      for (const h of new Set(pairs.map((p) => p[1]))) sinks.push(await startTcpSink(opts, h, overlay(h).address));
      const results = [];
      for (const [a, b, what] of pairs) {
        const r = await tcpTransfer(opts, a, overlay(b), 1 << 20, 30_000);
        results.push(`${a} -> ${b} (${what}): ${r.ok ? `intact in ${r.ms} ms` : r.error}`);
        expect(r.ok, `${a} -> ${b} (${what}): ${r.error}`).toBe(true);
      }
      note(`1 MiB TCP: ${results.join("; ")}`);
    } finally {
      await Promise.all(sinks.map((s) => s.close()));
    }
  });

  it("nat - with 30 % loss on branch's link, a fresh interface completes its handshakes and the tunnel carries traffic (1 MiB TCP at 10 %)", async () => {
    await labSetLoss(opts, "branch", 0.3);
    try {
      await cluster.stopAgent("branch-1");
      await labExec(opts, "branch-1", ["ip", "link", "del", "dev", hostInterface(opts, "branch-1")]);
      const t0 = Date.now();
      await cluster.startAgent("branch-1");
      const peers = HOSTS.filter((h) => h !== "branch-1");
      const keys = new Set(peers.map((h) => nodes.get(h)!.wireguardPublicKey));
      const took = await waitUntil("branch-1 handshakes with all 8 peers under 30 % loss", 120_000, async () => {
        const dump = await wgDump(opts, "branch-1");
        return (dump?.peers.filter((p) => keys.has(p.publicKey) && p.latestHandshake * 1000 >= t0 - 1000).length ?? 0) === peers.length;
      }, 250);
      note(`30 % loss on branch's link: a recreated interface completed handshakes with all 8 peers in ${(took / 1000).toFixed(1)} s`);
      const got = await pingCount(opts, "branch-1", overlay("aws-1").address, 100, { intervalS: 0.05 });
      note(`  ping branch-1 -> aws-1 under 30 % loss each way: ${got}/100 answered (about 49 expected)`);
      expect(got, "pings answered").toBeGreaterThan(20);
      // TCP itself, not the tunnel, is what stalls at 30 % each way (about half the round trips lost):
      // a retransmission lost 7–8 times in a row backs it off for a minute, and it happens often
      // enough over 900 segments that runs took 1.5 s or never finished (the agent's own NATS
      // connection over the same link dropped too). So the bulk transfer runs at 10 % each way.
      await labSetLoss(opts, "branch", 0.1);
      const sink = await startTcpSink(opts, "aws-1", overlay("aws-1").address);
      try {
        const r = await tcpTransfer(opts, "branch-1", overlay("aws-1"), 1 << 20, 90_000);
        note(`  1 MiB TCP branch-1 -> aws-1 under 10 % loss each way: ${r.ok ? `intact in ${r.ms} ms` : r.error}`);
        expect(r.ok, `1 MiB under 10 % loss: ${r.error}`).toBe(true);
      } finally {
        await sink.close();
      }
    } finally {
      await labSetLoss(opts, "branch", 0);
    }
  });
});
