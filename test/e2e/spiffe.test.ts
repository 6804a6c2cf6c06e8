/**
 * End-to-end tests of one identity for the overlay and the L7 mesh, on the lab: the agents' SPIFFE
 * Workload API read by a real SPIFFE client (go-spiffe v2's workloadapi, the reference client,
 * built from test/spiffe-probe), `weft whois`, and `weft mesh export | import` against the live
 * controller.
 *
 * One lab (prefix `wsf`), three hosts with one workload each: aws-1 (shop/web), aws-2 (shop/api),
 * azure-1 (shop/db); X.509-SVIDs live 20 s so a rotation comes every 10 s. In order:
 *   a workload fetches its SVID (right ID, chain verified against the bundle) → a streaming client
 *   sees a rotation on one connection → another workload, another host and an untrusted uid get
 *   nothing → mTLS between aws-1/web and azure-1/db over the overlay, each side verifying the
 *   other's SPIFFE ID, and a wrong identity refused → JWT-SVID fetched and validated →
 *   `weft whois` names the peer of a live connection → the export validates against Istio's CRD
 *   schemas → an imported AuthorizationPolicy gives the expected verdict matrix, and one with an
 *   HTTP path is refused naming the field, applying nothing.
 * Needs root (namespaces, WireGuard, eBPF) and Go (to build the probe); skipped otherwise.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { AuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1";
import { WorkloadEntry } from "@kubernetes-models/istio/networking.istio.io/v1";
import type { ControllerClient, Workload } from "@weft/protocol";
import { LabCluster, labExec, repoRoot, type LabOptions } from "@weft/lab";
import { readAgentState, waitUntil } from "./mesh.js";
import { spawnReady, startEcho, tcpProbe, type Spawned } from "./traffic.js";
import { labSuite } from "./lab-suite.js";

const PREFIX = process.env.WEFT_E2E_SPIFFE_PREFIX ?? "wsf";
const opts: LabOptions = { prefix: PREFIX };
const HOSTS = ["aws-1", "aws-2", "azure-1"];
const isRoot = process.getuid?.() === 0;
const hasGo = spawnSync("go", ["version"]).status === 0;
if (!isRoot) console.warn("e2e spiffe: skipped: needs root (network namespaces, WireGuard, eBPF)");
else if (!hasGo) console.warn("e2e spiffe: skipped: needs Go to build the go-spiffe probe");

const TD = "weft.internal";
const spiffe = (sa: string) => `spiffe://${TD}/ns/shop/sa/${sa}`;

const suite = labSuite("spiffe", opts);
const { note } = suite;

interface ProbeResult {
  code: number | null;
  out: Record<string, unknown>[];
  err: string;
}

describe.skipIf(!isRoot || !hasGo)("e2e spiffe", () => {
  let cluster: LabCluster;
  let client: ControllerClient;
  let probe: string;
  let buildDir: string;
  const running: Spawned[] = [];
  const recorded = new Map<string, Workload>();

  /** Runs the go-spiffe probe in a lab node against `socketHost`'s Workload API. */
  const runProbe = async (node: string, socketHost: string, args: string[], timeoutMs = 30_000): Promise<ProbeResult> => {
    const res = await labExec(opts, node, [probe, ...args], { env: { SPIFFE_ENDPOINT_SOCKET: `unix://${cluster.spiffeSocket(socketHost)}` }, timeoutMs });
    const out = res.stdout
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { code: res.exitCode, out, err: res.stderr.trim() };
  };
  const cli = async (args: string[]) => {
    const child = spawn(process.execPath, [cluster.cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const code = await new Promise<number | null>((r) => child.on("close", r));
    return { code, out, err };
  };
  const addressOf = (node: string) => {
    const w = recorded.get(node);
    if (!w) throw new Error(`workload ${node} has no recorded address`);
    return w.address;
  };

  suite.hooks({
    setup: async (c) => {
      cluster = c;
      buildDir = await mkdtemp(join(tmpdir(), "weft-spiffe-probe-"));
      probe = join(buildDir, "spiffe-probe");
      const build = spawnSync("go", ["build", "-o", probe, "."], { cwd: join(repoRoot(), "test", "spiffe-probe"), encoding: "utf8", timeout: 300_000 });
      if (build.status !== 0) throw new Error(`go build of test/spiffe-probe failed: ${build.stderr}`);
      await cluster.startController(["--x509-svid-ttl", "20s"]);
      client = await cluster.client();
      const key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "e2e spiffe", labels: { "weft:namespace": "infra", "weft:serviceaccount": "host", "weft:workload-namespaces": "shop", env: "e2e" } });
      await Promise.all(HOSTS.map((h) => cluster.startAgent(h, key.key)));
      await waitUntil("every agent to record its workload and see the others'", 60_000, async () => {
        for (const h of HOSTS) {
          const state = await readAgentState(cluster.agents.get(h)!.stateDir);
          if ((state?.workloads?.length ?? 0) !== 1) return false;
          if ((state?.applied?.peers ?? []).flatMap((p) => p.workloads ?? []).length !== HOSTS.length) return false;
        }
        return true;
      }, 250);
      for (const h of HOSTS) {
        const state = (await readAgentState(cluster.agents.get(h)!.stateDir))!;
        for (const w of state.workloads!) recorded.set(`${h}-${w.name}`, w);
      }
      await cluster.waitForFullMesh(60_000);
    },
    teardown: async () => {
      await Promise.all(running.map((r) => r.stop()));
    },
    cleanup: async () => {
      if (buildDir) await rm(buildDir, { recursive: true, force: true });
    },
  });

  it("e2e spiffe - a go-spiffe client in a workload gets its SVID: the right SPIFFE ID, a chain that verifies against the bundle", async () => {
    for (const [node, host, sa] of [
      ["aws-1-web", "aws-1", "web"],
      ["azure-1-db", "azure-1", "db"],
    ] as const) {
      const t0 = Date.now();
      let res: ProbeResult | undefined;
      await waitUntil(`${node} to fetch its SVID`, 30_000, async () => (res = await runProbe(node, host, ["fetch", "-timeout", "5s"])).code === 0, 500).catch(() => undefined);
      expect(res?.code, `${node} fetch: ${res?.err}`).toBe(0);
      const got = res!.out[0]!;
      expect([got.spiffeId, got.verifiedId, got.svids], `${node} SVID`).toEqual([spiffe(sa), spiffe(sa), 1]);
      expect(got.chainLength, "leaf and the trust domain's CA").toBe(2);
      const life = (Date.parse(String(got.notAfter)) - Date.now()) / 1000;
      expect(life, "a 20 s SVID").toBeLessThanOrEqual(21);
      note(`${node}: go-spiffe FetchX509Context → ${got.spiffeId}, chain verified against the bundle (x509svid.Verify), ${Math.round(life)} s left, ${Date.now() - t0} ms`);
    }
    const host = await runProbe("aws-1", "aws-1", ["fetch", "-timeout", "10s"]);
    expect([host.code, host.out[0]?.spiffeId], `root on the aws-1 host: ${host.err}`).toEqual([0, `spiffe://${TD}/ns/infra/sa/host`]);
  });

  it("e2e spiffe - a streaming client sees SVID rotations on one connection", async () => {
    const t0 = Date.now();
    const res = await runProbe("aws-1-web", "aws-1", ["watch", "-updates", "3", "-timeout", "40s"], 60_000);
    expect(res.code, `watch: ${res.err}`).toBe(0);
    const summary = res.out.at(-1)!;
    const updates = res.out.filter((o) => "update" in o);
    expect(summary.distinct, "distinct SVIDs seen").toBe(3);
    expect(summary.dials, "connections dialled by the client").toBe(1);
    expect(summary.errors ?? [], "watch errors (a broken stream would show here)").toEqual([]);
    expect(new Set(updates.map((u) => u.spiffeId)), "one identity throughout").toEqual(new Set([spiffe("web")]));
    note(`rotation: ${updates.length} updates (${updates.map((u) => String(u.serial).slice(0, 8)).join(", ")}) on 1 connection in ${Date.now() - t0} ms (TTL 20 s, rotated at half-life)`);
  });

  it("e2e spiffe - another workload, another host and an untrusted uid get nothing from a host's Workload API", async () => {
    const cases: [string, string, string[], string][] = [
      ["aws-2-api", "aws-1", [], "a workload of another host (same site)"],
      ["azure-1-db", "aws-1", [], "a workload of another cloud"],
      ["azure-1", "aws-1", [], "another host's root"],
    ];
    for (const [node, socketHost, , what] of cases) {
      const res = await runProbe(node, socketHost, ["fetch", "-timeout", "5s"]);
      expect(res.code, `${what} (${node} → ${socketHost}'s socket): got ${JSON.stringify(res.out)}`).not.toBe(0);
      expect(res.out, `${what}: nothing printed`).toEqual([]);
      expect(res.err, `${what}: refused`).toMatch(/PermissionDenied|no identity issued/);
    }
    // A non-root process on the aws-1 host itself (uid 65534): not in spiffe.hostUids.
    const nobody = await labExec(opts, "aws-1", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", probe, "fetch", "-timeout", "5s"], { env: { SPIFFE_ENDPOINT_SOCKET: `unix://${cluster.spiffeSocket("aws-1")}` } });
    expect([nobody.exitCode, nobody.stdout.trim()], `uid 65534 on the aws-1 host: ${nobody.stderr}`).toEqual([3, ""]);
    expect(nobody.stderr).toMatch(/PermissionDenied|no identity issued/);
    // aws-2's api workload asks aws-2's own socket: it gets api, never web.
    const own = await runProbe("aws-2-api", "aws-2", ["fetch", "-timeout", "10s"]);
    expect(own.out[0]?.spiffeId, `aws-2-api on its own host: ${own.err}`).toBe(spiffe("api"));
    note("refused: aws-2/api and azure-1/db at aws-1's socket, azure-1's root at aws-1's socket, uid 65534 on aws-1 (PermissionDenied, nothing printed)");
  });

  it("e2e spiffe - mTLS between workloads in two clouds over the overlay, each side verifying the other's SPIFFE ID", async () => {
    const dbAddress = addressOf("azure-1-db");
    const server = await spawnReady(opts, "azure-1-db", ["env", `SPIFFE_ENDPOINT_SOCKET=unix://${cluster.spiffeSocket("azure-1")}`, probe, "serve", "-listen", ":7443", "-allow", spiffe("web"), "-timeout", "300s"], '"listening"', 30_000);
    running.push(server);
    const ok = await runProbe("aws-1-web", "aws-1", ["dial", "-addr", `${dbAddress}:7443`, "-expect", spiffe("db")]);
    expect(ok.code, `web → db: ${ok.err}`).toBe(0);
    expect(ok.out[0], "both identities, verified").toMatchObject({ server: spiffe("db"), client: spiffe("web"), reply: `${spiffe("db")} saw ${spiffe("web")}: hello from ${spiffe("web")}` });
    const wrongExpect = await runProbe("aws-1-web", "aws-1", ["dial", "-addr", `${dbAddress}:7443`, "-expect", spiffe("api"), "-timeout", "10s"]);
    expect(wrongExpect.code, "the client refuses a server that is not the one it expects").not.toBe(0);
    expect(wrongExpect.err, "client-side refusal").toMatch(/unexpected ID|spiffe/i);
    const wrongClient = await runProbe("aws-2-api", "aws-2", ["dial", "-addr", `${dbAddress}:7443`, "-expect", spiffe("db"), "-timeout", "10s"]);
    expect(wrongClient.code, "the server refuses a client that is not web").not.toBe(0);
    note(`mTLS aws-1/web → azure-1/db (${dbAddress}:7443, across clouds over WireGuard): both IDs verified; a wrong expected server and a wrong client (api) refused`);
  });

  it("e2e spiffe - a JWT-SVID is fetched in one workload and validated in another", async () => {
    const jwt = await runProbe("aws-1-web", "aws-1", ["jwt", "-audience", "db"]);
    expect(jwt.code, `jwt: ${jwt.err}`).toBe(0);
    expect(jwt.out[0]?.spiffeId).toBe(spiffe("web"));
    const token = String(jwt.out[0]?.token);
    const ok = await runProbe("azure-1-db", "azure-1", ["validate", "-audience", "db", "-token", token]);
    expect([ok.code, ok.out[0]?.spiffeId], `validate at azure-1: ${ok.err}`).toEqual([0, spiffe("web")]);
    const wrong = await runProbe("azure-1-db", "azure-1", ["validate", "-audience", "api", "-token", token]);
    expect(wrong.code, "another audience").not.toBe(0);
  });

  it("e2e spiffe - weft whois names the peer of a live connection", async () => {
    const SERVER_JS = `
const net = require("node:net");
net.createServer((s) => { process.stdout.write(JSON.stringify({ peer: s.remoteAddress + ":" + s.remotePort }) + "\\n"); s.on("data", () => {}); }).listen(7600, "0.0.0.0", () => process.stdout.write("ready\\n"));
process.on("SIGTERM", () => process.exit(0));`;
    const CLIENT_JS = `
const net = require("node:net");
const s = net.connect(7600, process.argv[1], () => process.stdout.write("connected\\n"));
process.on("SIGTERM", () => process.exit(0));`;
    const server = await spawnReady(opts, "azure-1-db", [process.execPath, "-e", SERVER_JS], "ready");
    running.push(server);
    const conn = await spawnReady(opts, "aws-1-web", [process.execPath, "-e", CLIENT_JS, addressOf("azure-1-db")], "connected", 10_000);
    running.push(conn);
    let peer = "";
    await waitUntil("the server to see the connection", 10_000, async () => {
      const line = server.stdout().split("\n").find((l) => l.startsWith("{"));
      if (line) peer = (JSON.parse(line) as { peer: string }).peer;
      return peer !== "";
    });
    const res = await cli(["whois", "--json", "--state-dir", cluster.agents.get("azure-1")!.stateDir, peer]);
    expect(res.code, `weft whois ${peer}: ${res.err}`).toBe(0);
    const w = JSON.parse(res.out) as { node: { name: string }; workload?: string; spiffeId?: string; site: string; port?: number; labels: Record<string, string> };
    expect({ node: w.node.name, workload: w.workload, spiffeId: w.spiffeId, site: w.site, port: w.port }, `whois ${peer}`).toEqual({ node: "aws-1", workload: "web", spiffeId: spiffe("web"), site: "aws", port: Number(peer.split(":")[1]) });
    expect(w.labels.env, "the node's published labels").toBe("e2e");
    const text = await cli(["whois", "--state-dir", cluster.agents.get("azure-1")!.stateDir, peer]);
    expect(text.out, "text output").toContain(`spiffe id: ${spiffe("web")}`);
    const unknown = await cli(["whois", "--state-dir", cluster.agents.get("azure-1")!.stateDir, "100.127.1.1"]);
    expect([unknown.code, unknown.err], "an address nobody holds").toEqual([1, expect.stringContaining("no node or workload")]);
    note(`whois at azure-1 of the live connection's peer ${peer} → aws-1/web ${spiffe("web")} (site aws)`);
    await conn.stop();
  });

  it("e2e spiffe - an imported AuthorizationPolicy gives the expected verdict matrix; an HTTP path is refused naming the field", async () => {
    for (const node of ["azure-1-db", "aws-2-api"]) running.push(await startEcho(opts, node, [5432, 9090]));
    const dir = await mkdtemp(join(tmpdir(), "weft-e2e-authz-"));
    try {
      const refused = join(dir, "paths.yaml");
      await writeFile(refused, AUTHZ.replace('ports: ["5432"]', 'ports: ["5432"]\n            paths: ["/admin"]'));
      const bad = await cli(["mesh", "import", "-f", refused, "--controller-state-dir", cluster.controllerStateDir]);
      expect([bad.code, bad.err], "an HTTP path").toEqual([2, expect.stringContaining("spec.rules[0].to[0].operation.paths")]);
      expect(await client.listPolicies(), "nothing applied").toEqual([]);

      const file = join(dir, "authz.yaml");
      await writeFile(file, AUTHZ);
      const ok = await cli(["mesh", "import", "-f", file, "--controller-state-dir", cluster.controllerStateDir]);
      expect(ok.code, `weft mesh import: ${ok.err}`).toBe(0);
      expect((await client.listPolicies()).map((p) => p.name).sort()).toEqual(["istio-shop-db-allow", "istio-shop-db-deny"]);
      const db = addressOf("azure-1-db");
      const api = addressOf("aws-2-api");
      const matrix: [string, string, number, "open" | "timeout", string][] = [
        ["aws-1-web", db, 5432, "open", "web → db:5432 allowed (principal)"],
        ["aws-1-web", db, 9090, "timeout", "web → db:9090 default deny"],
        ["aws-2-api", db, 5432, "timeout", "api → db:5432 DENY wins over the namespace ALLOW"],
        ["aws-2-api", db, 9090, "timeout", "api → db:9090 denied"],
        ["aws-1-web", api, 9090, "open", "web → api: no policy, open"],
      ];
      let got: string[] = [];
      const want = matrix.map(([from, to, port, v, why]) => `${from} → ${to}:${port} ${v} (${why})`);
      const t0 = Date.now();
      await waitUntil("the imported policy's verdicts", 20_000, async () => {
        got = await Promise.all(matrix.map(async ([from, to, port, , why]) => `${from} → ${to}:${port} ${await tcpProbe(opts, from, to, port, 1000)} (${why})`));
        return got.join("\n") === want.join("\n");
      }, 200).catch(() => undefined);
      expect(got, "verdicts").toEqual(want);
      note(`import: ${matrix.length}-cell verdict matrix as Istio says, ${Date.now() - t0} ms after the import; an HTTP path refused (spec.rules[0].to[0].operation.paths), nothing applied`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it("e2e spiffe - the live export (members and the imported policy) validates against Istio's CRD schemas", async () => {
    const res = await cli(["mesh", "export", "--format", "istio", "--controller-state-dir", cluster.controllerStateDir]);
    expect(res.code, `weft mesh export: ${res.err}`).toBe(0);
    const docs = parseAllDocuments(res.out).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> });
    const entries = docs.filter((d) => d.kind === "WorkloadEntry");
    expect(entries.map((d) => d.metadata.name).sort(), "a WorkloadEntry per node and workload").toEqual(["aws-1", "aws-1-web", "aws-2", "aws-2-api", "azure-1", "azure-1-db"]);
    for (const d of entries) new WorkloadEntry(d as never).validate();
    const policies = docs.filter((d) => d.kind === "AuthorizationPolicy");
    for (const d of policies) new AuthorizationPolicy(d as never).validate();
    expect(policies.map((d) => `${d.metadata.name} ${String(d.spec.action)}`).sort(), "the imported policy, exported back").toEqual(["weft-allow-sa-db ALLOW", "weft-deny-sa-db DENY"]);
    const web = entries.find((d) => d.metadata.name === "aws-1-web")!;
    expect(web.spec, "the web workload's entry").toMatchObject({ address: addressOf("aws-1-web"), serviceAccount: "web", network: "weft" });
  });
});

/** Web may reach db on 5432; the namespace may reach db; api never may (DENY wins). */
const AUTHZ = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db-allow, namespace: shop }
spec:
  selector: { matchLabels: { weft/service-account: db } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["${TD}/ns/shop/sa/web"] } }]
      to:
        - operation:
            ports: ["5432"]
    - from: [{ source: { principals: ["${TD}/ns/shop/sa/api"] } }]
      to: [{ operation: { ports: ["5432"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db-deny, namespace: shop }
spec:
  selector: { matchLabels: { weft/service-account: db } }
  action: DENY
  rules:
    - from: [{ source: { principals: ["${TD}/ns/shop/sa/api"] } }]
`;
