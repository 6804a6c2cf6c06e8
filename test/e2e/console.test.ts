/**
 * End-to-end tests of the web console in a real browser: Debian's Chromium, headless, driven by
 * playwright-core, against the controller on the lab (the same set-up as the demo: the three cloud
 * simulators, keyless joins through enrollment policies, on-prem by join key, a workload per host).
 *
 * One lab (prefix `wtc`), in order: log in → every lab node on the map (and every tunnel fresh)
 * → apply a policy in the console and see the matrix change within 2 s → terminate an instance in
 * the GCP simulator and see its node leave the map → open a node's detail → axe-core finds no
 * serious or critical violation on each view → flows reported by the agents show in the console →
 * the Grafana dashboard's every query names a family of the real /metrics of the controller and an
 * agent. Screenshots go to test/e2e/artifacts/ (gitignored); with WEFT_E2E_UPDATE_SCREENSHOTS=1 the
 * topology view is also written to docs/console-topology.png (the README's image).
 * Needs root; skipped with a message otherwise.
 */
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import type { ControllerClient, FlowsView } from "@weft/protocol";
import { CONTROLLER_API_PORT, LAB_ONPREM_KEY_LABELS, LAB_ONPREM_KEY_SITE, LabCluster, labDir, labExec, repoRoot, terminateLabInstance, waitFor, type LabOptions, type RunningClouds } from "@weft/lab";
import { dashboardQueries, exposedFamilies, unknownMetrics } from "../../controller/src/metrics/dashboard.js";
import { ARTIFACTS, axeViolations, launchChromium, startLabRelay, type LabRelay } from "./browser.js";
import { labSuite } from "./lab-suite.js";

const PREFIX = process.env.WEFT_E2E_CONSOLE_PREFIX ?? "wtc";
const opts: LabOptions = { prefix: PREFIX };
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("e2e console: skipped: needs root (network namespaces, WireGuard)");

const suite = labSuite("console", opts);
const { note } = suite;

describe.skipIf(!isRoot)("e2e console", () => {
  let cluster: LabCluster;
  let client: ControllerClient;
  let clouds: RunningClouds;
  let relay: LabRelay;
  let browser: Browser;
  let page: Page;
  const hosts = () => cluster.topology.hosts.map((h) => h.name).sort();
  const shot = async (name: string) => {
    await mkdir(ARTIFACTS, { recursive: true });
    const path = join(ARTIFACTS, `console-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    return path;
  };
  /** The node names the map's list shows (read back from cytoscape by the page). */
  const mapNodes = () => page.locator("[data-testid=map-nodes] button[data-node]").evaluateAll((els) => els.map((e) => e.getAttribute("data-node") ?? "").sort());
  const view = (name: string) => page.getByRole("navigation", { name: "Views" }).getByRole("button", { name, exact: true }).click();
  const seriousViolations = async (where: string) => {
    const violations = await axeViolations(page);
    const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    note(`axe on ${where}: ${violations.length} violations, ${serious.length} serious or critical${violations.length ? ` (${violations.map((v) => `${v.id}:${v.impact}`).join(", ")})` : ""}`);
    return serious.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join("; ")}`);
  };

  suite.hooks({
    cluster: () => new LabCluster({ ...opts, clouds: true }),
    setup: async (c) => {
      cluster = c;
      clouds = await cluster.startClouds();
      await cluster.startController(["--inventory-config", clouds.inventoryConfigPath]);
      client = await cluster.client();
      await client.syncInventory();
      for (const provider of ["aws", "azure", "gcp"] as const) {
        await client.applyEnrollmentPolicy({ name: `lab-${provider}`, selector: { provider, tags: { env: "lab" } }, labels: { "weft:workload-namespaces": "shop" } });
      }
      const key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "e2e console: on-prem", site: LAB_ONPREM_KEY_SITE, labels: { ...LAB_ONPREM_KEY_LABELS } });
      await Promise.all(cluster.topology.hosts.map((h) => cluster.startAgent(h.name, h.site === "onprem" ? key.key : undefined, ["--flow-interval", "2"])));
      await cluster.waitForFullMesh(90_000);
      await client.syncInventory(); // binds, labels, site routes
      relay = await startLabRelay(opts, "ctl", cluster.topology.controller.address, CONTROLLER_API_PORT, join(labDir(opts), "console-relay.sock"));
      browser = await launchChromium(await cluster.controllerCaHash());
      page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    },
    onTestFailed: () => shot(`failed-${Date.now()}`),
    teardown: async () => {
      await browser?.close();
      await relay?.stop();
    },
  });

  it("e2e console - the login page passes axe, refuses a wrong token, and the admin token logs in (a session cookie, no token kept)", async () => {
    await page.goto(`${relay.url}/console/`);
    await page.getByLabel("Admin token").waitFor();
    expect(await seriousViolations("the login page"), "serious axe violations on the login page").toEqual([]);
    await page.getByLabel("Admin token").fill("not-the-admin-token-0123456789");
    await page.getByRole("button", { name: "Log in" }).click();
    await expectText(page.getByRole("alert"), /admin token is not valid/);
    const token = (await readFile(join(cluster.controllerStateDir, "admin-token"), "utf8")).trim();
    const t0 = Date.now();
    await page.getByLabel("Admin token").fill(token);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByTestId("summary").waitFor();
    note(`login → console shown in ${Date.now() - t0} ms`);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "weft_session");
    expect(session, "session cookie").toBeDefined();
    expect({ httpOnly: session!.httpOnly, secure: session!.secure, sameSite: session!.sameSite }, "cookie attributes").toEqual({ httpOnly: true, secure: true, sameSite: "Strict" });
    const stored = await page.evaluate<string>("JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie + location.href");
    expect(stored.includes(token), "the admin token in storage, script-visible cookies or the URL").toBe(false);
  });

  it("e2e console - every lab node is on the map, every tunnel fresh, and the map passes axe", async () => {
    const t0 = Date.now();
    await waitFor("all lab nodes on the map", 30_000, async () => JSON.stringify(await mapNodes()) === JSON.stringify(hosts()));
    note(`all ${hosts().length} nodes on the map ${Date.now() - t0} ms after the console opened`);
    const edges = await page.getByTestId("topology-map").getAttribute("aria-label");
    expect(edges, "tunnels on the map").toMatch(new RegExp(`${hosts().length} nodes, ${(hosts().length * (hosts().length - 1)) / 2} tunnels`));
    await waitFor("every tunnel fresh", 30_000, async () => /fresh \(≤ 135 s\) 21\b/.test((await page.locator(".legend").textContent()) ?? ""));
    // The map is drawn, not only listed: after the live refreshes above, the canvases cytoscape
    // paints cover a good part of the map (nodes stacked at one point once covered ~1 %).
    const painted = await page.getByTestId("topology-map").evaluate((map) => {
      let covered = 0;
      let area = 0;
      for (const canvas of map.querySelectorAll("canvas")) {
        const ctx = canvas.getContext("2d");
        if (!ctx || canvas.width === 0 || canvas.height === 0) continue;
        const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        area = Math.max(area, canvas.width * canvas.height);
        for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) covered++;
      }
      return area === 0 ? 0 : covered / area;
    });
    note(`map canvases cover ${(painted * 100).toFixed(1)} % of the map`);
    expect(painted, "share of the map's area cytoscape painted").toBeGreaterThan(0.1);
    const path = await shot("topology");
    if (process.env.WEFT_E2E_UPDATE_SCREENSHOTS === "1") {
      await mkdir(join(repoRoot(), "docs"), { recursive: true });
      await copyFile(path, join(repoRoot(), "docs", "console-topology.png"));
    }
    expect(await seriousViolations("the topology view"), "serious axe violations on the topology view").toEqual([]);
  });

  it("e2e console - a policy applied in the console changes the matrix within 2 s", async () => {
    await view("Policy");
    const cell = (src: string, dst: string) => page.locator(`[data-testid=policy-matrix] td[data-src="spiffe://weft.internal/ns/shop/sa/${src}"][data-dst="spiffe://weft.internal/ns/shop/sa/${dst}"]`);
    await cell("web", "api").waitFor();
    expect(await cell("web", "api").getAttribute("data-verdict"), "web → api before any policy").toBe("open");
    expect(await seriousViolations("the policy view"), "serious axe violations on the policy view").toEqual([]);
    const policy = { name: "e2e-console-web-to-api", rules: [{ action: "allow", from: [{ namespace: "shop", serviceAccount: "web" }], to: [{ namespace: "shop", serviceAccount: "api" }], ports: [{ protocol: "tcp", port: 7000 }] }] };
    await page.getByLabel("Apply a policy (JSON)").fill(JSON.stringify(policy));
    const clicked = Date.now();
    await page.getByRole("button", { name: "Apply policy" }).click();
    // A locator, not a string predicate: the console's CSP (script-src 'self') forbids eval.
    await page.locator(`[data-testid=policy-matrix] td[data-src$="/sa/web"][data-dst$="/sa/api"][data-verdict="partial"]`).waitFor({ timeout: 10_000 });
    const ms = Date.now() - clicked;
    note(`policy applied in the console → matrix changed (web → api: open → partial) in ${ms} ms`);
    expect(ms, "ms from Apply to the matrix change").toBeLessThan(2000);
    expect(await page.getByTestId("apply-result").textContent(), "apply result").toBe(`applied ${policy.name}`);
    expect(await cell("db", "api").getAttribute("data-verdict"), "db → api after the policy (default deny)").toBe("deny");
    await cell("web", "api").getByRole("button").click();
    expect(await page.getByTestId("matrix-why").textContent(), "why web → api").toMatch(/tcp\/7000 allowed by e2e-console-web-to-api#0/);
    await shot("policy");
  });

  it("e2e console - an instance terminated in the GCP simulator: its node leaves the map after the sync", async () => {
    await view("Topology");
    await terminateLabInstance(clouds, cluster.topology.hosts.find((h) => h.name === "gcp-2")!);
    const t0 = Date.now();
    await client.syncInventory();
    const synced = Date.now();
    await waitFor("gcp-2 off the map", 15_000, async () => !(await mapNodes()).includes("gcp-2"), 50);
    note(`gcp-2 terminated: sync took ${synced - t0} ms; off the map ${Date.now() - synced} ms after the sync returned`);
    expect(await mapNodes(), "nodes on the map").toEqual(hosts().filter((h) => h !== "gcp-2"));
    await shot("after-terminate");
  });

  it("e2e console - a node's detail shows its labels, endpoints, workloads and peers", async () => {
    const t0 = Date.now();
    await page.locator("[data-testid=map-nodes] button[data-node=aws-1]").click();
    const detail = page.getByTestId("node-detail");
    await detail.waitFor();
    note(`node detail opened in ${Date.now() - t0} ms`);
    await expectText(detail.getByRole("heading", { name: "Node aws-1" }), /aws-1/);
    const text = (await detail.textContent()) ?? "";
    for (const want of ["cloud.provider=aws", "spiffe://weft.internal/ns/infra/sa/host", "10.10.0.", "spiffe://weft.internal/ns/shop/sa/web"]) expect(text, `detail shows ${want}`).toContain(want);
    await waitFor("aws-1's peers in its detail", 15_000, async () => (await detail.locator("[data-testid=node-peers] tbody tr").count()) === hosts().length - 2);
    const rows = await detail.locator("[data-testid=node-peers] tbody tr").allTextContents();
    note(`aws-1 detail: ${rows.length} peers, e.g. ${rows[0]}`);
    expect(rows.every((r) => /\d+ s ago/.test(r) && /(B|KiB|MiB)/.test(r)), `every peer row has a handshake age and bytes: ${rows.join(" | ")}`).toBe(true);
    await shot("node-detail");
    expect(await seriousViolations("the node detail"), "serious axe violations on the node detail").toEqual([]);
  });

  it("e2e console - flows the agents report show per identity pair, with drops by reason", async () => {
    // The policy above default-denies api: db → api is dropped at api's host; web → api on tcp/7000 passes.
    const api = cluster.topology.hosts.find((h) => h.name === "aws-2")!.workloads[0]!;
    const db = cluster.topology.hosts.find((h) => h.name === "azure-1")!.workloads[0]!;
    const apiAddress = (await client.listNodes()).find((n) => n.name === "aws-2")!.workloads!.find((w) => w.name === api.name)!.address;
    await labExec(opts, db.node, ["ping", "-c", "5", "-i", "0.2", "-W", "1", apiAddress]);
    await view("Flows");
    const t0 = Date.now();
    const row = page.locator(`[data-testid=flows] tr[data-src$="/sa/db"][data-dst$="/sa/api"]`);
    await row.waitFor({ timeout: 25_000 }); // agents report every 2 s here (--flow-interval 2)
    await waitFor("db → api drops in the flows view", 15_000, async () => /defaultDeny=\d+/.test((await row.textContent()) ?? ""));
    note(`db → api flow with defaultDeny drops shown ${Date.now() - t0} ms after the pings ended: ${(await row.textContent())?.replace(/\s+/g, " ")}`);
    // The lab's agents report on time: none of their reports may be refused as too frequent (a refused report's counts are lost).
    const flows = await client.raw("GET", "/v1/flows");
    const reports = (JSON.parse(flows.text) as FlowsView).reports;
    note(`flow reports since the controller started: ${reports.accepted} accepted, ${reports.refused} refused`);
    expect(reports.refused, "flow reports of the lab's agents refused by the controller").toBe(0);
    await shot("flows");
    expect(await seriousViolations("the flows view"), "serious axe violations on the flows view").toEqual([]);
  });

  it("e2e console - every Grafana query names a family of the real /metrics of the controller and of an agent", async () => {
    const dashboard: unknown = JSON.parse(await readFile(join(repoRoot(), "deploy", "grafana", "weft-overlay.json"), "utf8"));
    const metricsToken = (await readFile(join(cluster.controllerStateDir, "metrics-token"), "utf8")).trim();
    const ctl = await client.raw("GET", "/metrics", undefined, { authorization: `Bearer ${metricsToken}` });
    expect(ctl.status, "controller /metrics with the metrics token").toBe(200);
    const agent = await labExec(opts, "aws-1", [process.execPath, "-e", "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"]);
    expect(agent.exitCode, `agent /metrics: ${agent.stderr}`).toBe(0);
    const families = new Map([...exposedFamilies(ctl.text), ...exposedFamilies(agent.stdout)]);
    note(`real /metrics: controller ${exposedFamilies(ctl.text).size} families, agent ${exposedFamilies(agent.stdout).size}`);
    const names = dashboardQueries(dashboard).flatMap((q) => q.metrics);
    expect(unknownMetrics(names, families), "dashboard metrics that the running controller and agent do not export").toEqual([]);
    expect(agent.stdout, "per-peer handshake age on the agent").toMatch(/weft_peer_handshake_age_seconds\{peer="aws-2",site="aws",path="private"\} \d/);
    expect(agent.stdout, "per-peer path through a NAT (on-prem)").toMatch(/weft_peer_rx_bytes_total\{peer="onprem-1",site="onprem",path="nat"\} \d/);
    expect(ctl.text, "enrollments on the controller").toMatch(/weft_controller_enrollments_total\{result="enrolled",reason="none"\} 7/);
    expect(ctl.text, "inventory syncs per account").toMatch(/weft_controller_inventory_syncs_total\{provider="gcp",account="[^"]+",result="ok"\} \d/);
  });
});

async function expectText(locator: ReturnType<Page["locator"]>, want: RegExp): Promise<void> {
  await locator.waitFor();
  await waitFor(`text ${want}`, 5_000, async () => want.test((await locator.textContent()) ?? ""));
}
