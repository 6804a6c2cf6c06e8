/**
 * Inventory sync benchmark: a real `weft controller` (the built CLI, its own process, embedded
 * NATS) syncs 10,000 simulated instances across the three clouds' simulators (the real SDKs on
 * the wire, paging at each API's own page size). Measured, side by side in one run:
 *
 *   full      the first sync: every instance and network new
 *   nochange  the same fleet again: nothing to write
 *   retag1pc  1 % of the instances retagged: only those records rewritten
 *
 * each over `--rounds` repetitions (nochange and retag), with the controller's resident memory
 * (VmRSS after each sync and VmHWM, its peak) read from /proc. Loopback only. Writes
 * bench-results/inventory-<timestamp>.json and inventory-latest.json.
 *
 *   npm run bench -- inventory [--instances 10000] [--rounds 3]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ControllerClient, ControllerFiles, type InventorySyncResult } from "@weft/protocol";
import { AwsInventory, AzureInventory, GcpInventory } from "@weft/cloud";
import { SimStore, startAwsSim, startAzureSim, startGcpSim } from "@weft/cloud-sim";
import { describeMachine } from "./src/report.js";
import { median } from "./src/stats.js";

const say = (line: string) => process.stderr.write(`${line}\n`);
const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));

interface Sample {
  kind: "full" | "nochange" | "retag1pc";
  ms: number;
  written: number;
  rssMb: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { instances: { type: "string", default: "10000" }, rounds: { type: "string", default: "3" }, out: { type: "string" } } });
  const total = Number(values.instances);
  const rounds = Number(values.rounds);
  if (!(total >= 3) || !(rounds >= 1)) throw new Error("--instances must be at least 3 and --rounds at least 1");
  const cli = join(repo, "cli", "dist", "main.js");
  if (!existsSync(cli)) throw new Error(`the weft CLI is not built at ${cli}; run npm run build`);
  const dir = await mkdtemp(join(tmpdir(), "weft-bench-inventory-"));
  const per = Math.ceil(total / 3);
  const fleets = { aws: new SimStore(), azure: new SimStore(), gcp: new SimStore() };
  const aws = await startAwsSim({ account: "111122223333", store: fleets.aws });
  const azure = await startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10", store: fleets.azure });
  const gcp = await startGcpSim({ project: "weft-bench", store: fleets.gcp });
  await writeFile(join(dir, "azure-ca.pem"), azure.caPem);
  await writeFile(
    join(dir, "inventory.yaml"),
    [
      "intervalSeconds: 86400",
      "accounts:",
      `  - { provider: aws, account: "111122223333", regions: [us-east-1], endpoint: "${aws.url}" }`,
      `  - { provider: azure, subscriptionId: "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10", endpoint: "${azure.url}", caFile: "${join(dir, "azure-ca.pem")}" }`,
      `  - { provider: gcp, project: "weft-bench", apiEndpoint: "${gcp.url}" }`,
      "",
    ].join("\n"),
  );
  let controller: ChildProcess | undefined;
  try {
    const stateDir = join(dir, "controller");
    say(`==> ${total} instances (${per} aws, ${per} azure, ${total - 2 * per} gcp) in three simulators; starting the controller`);
    controller = spawn(
      process.execPath,
      [cli, "controller", "--state-dir", stateDir, "--api-port", "0", "--nats-port", "0", "--api-host", "127.0.0.1", "--nats-host", "127.0.0.1", "--inventory-config", join(dir, "inventory.yaml")],
      {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, AWS_ACCESS_KEY_ID: "AKIAWEFTBENCH0000000", AWS_SECRET_ACCESS_KEY: "bench", AWS_EC2_METADATA_DISABLED: "true", WEFT_INVENTORY_AZURE_TOKEN: "bench", WEFT_INVENTORY_GCP_TOKEN: "bench", WEFT_LOG_LEVEL: "warn" },
      },
    );
    let stderr = "";
    controller.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
    const client = await connect(stateDir, controller, () => stderr);
    const pid = controller.pid ?? 0;
    // The controller syncs once at start: let that (empty) sync finish before the fleet appears,
    // so the first measured sync really finds every instance new.
    await client.syncInventory(600_000);
    seed(fleets.aws, "aws", per, "us-east-1", "us-east-1a", "vpc-0bench000000000001");
    seed(fleets.azure, "azure", per, "westeurope", "1", "bench-vnet");
    seed(fleets.gcp, "gcp", total - 2 * per, "europe-west1", "europe-west1-b", "bench-net");
    // What the clouds' APIs alone cost: the same adapters fetching in this process, no controller.
    const fetchMs = await timeFetches(aws.url, azure, gcp.url);
    say(`    fetch only (adapters + simulators, no controller): aws ${fetchMs.aws.toFixed(0)} ms, azure ${fetchMs.azure.toFixed(0)} ms, gcp ${fetchMs.gcp.toFixed(0)} ms`);
    const rssBefore = memory(pid).rssMb;
    const samples: Sample[] = [];
    const run = async (kind: Sample["kind"]) => {
      const t0 = performance.now();
      const r = await client.syncInventory(600_000);
      const ms = performance.now() - t0;
      const s: Sample = { kind, ms, written: written(r), rssMb: memory(pid).rssMb };
      const failed = r.accounts.filter((a) => a.result !== "ok");
      if (failed.length > 0) throw new Error(`sync ${kind}: accounts not ok: ${failed.map((a) => `${a.provider} ${a.result} ${a.error?.message ?? a.issues[0]?.message ?? ""}`).join("; ")}`);
      const listed = r.accounts.reduce((n, a) => n + a.counts.instances, 0);
      if (listed !== total) throw new Error(`sync ${kind}: ${listed} instances stored, want ${total}`);
      samples.push(s);
      say(`    ${kind.padEnd(9)} ${ms.toFixed(0).padStart(6)} ms, ${s.written} records written, controller RSS ${s.rssMb.toFixed(0)} MB`);
    };
    say("==> full sync");
    await run("full");
    for (let i = 0; i < rounds; i++) {
      await run("nochange");
      const ids = [...fleets.aws.instances.keys()].slice(0, Math.ceil(per / 100));
      for (const id of ids) fleets.aws.retag(id, { bench: `round-${i}` });
      const azIds = [...fleets.azure.instances.keys()].slice(0, Math.ceil(per / 100));
      for (const id of azIds) fleets.azure.retag(id, { bench: `round-${i}` });
      const gIds = [...fleets.gcp.instances.keys()].slice(0, Math.ceil((total - 2 * per) / 100));
      for (const id of gIds) fleets.gcp.retag(id, { bench: `round-${i}` });
      await run("retag1pc");
    }
    const mem = memory(pid);
    const byKind = (k: Sample["kind"]) => samples.filter((s) => s.kind === k);
    const med = (k: Sample["kind"]) => median(byKind(k).map((s) => s.ms));
    const result = {
      schema: "weft.bench.inventory/v1",
      date: new Date().toISOString(),
      machine: describeMachine(repo),
      instances: total,
      rounds,
      fullSyncMs: byKind("full")[0]?.ms ?? Number.NaN,
      noChangeSyncMs: med("nochange"),
      retag1pcSyncMs: med("retag1pc"),
      fetchOnlyMs: fetchMs,
      controllerRssMb: { beforeSync: rssBefore, afterLastSync: mem.rssMb, peak: mem.hwmMb },
      samples,
    };
    const out = values.out ?? join(repo, "bench-results");
    await mkdir(out, { recursive: true });
    const stamp = result.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
    const text = `${JSON.stringify(result, null, 2)}\n`;
    await writeFile(join(out, `inventory-${stamp}.json`), text);
    await writeFile(join(out, "inventory-latest.json"), text);
    process.stdout.write(
      [
        "",
        `inventory sync of ${total} instances across aws, azure and gcp simulators (real SDKs, real controller + NATS)`,
        `  full sync (all new)            ${result.fullSyncMs.toFixed(0).padStart(7)} ms`,
        `  nothing changed (median of ${rounds})  ${result.noChangeSyncMs.toFixed(0).padStart(7)} ms   ${ratio(result.noChangeSyncMs, result.fullSyncMs)} of a full sync`,
        `  1 % retagged (median of ${rounds})     ${result.retag1pcSyncMs.toFixed(0).padStart(7)} ms   ${ratio(result.retag1pcSyncMs, result.fullSyncMs)} of a full sync`,
        `  for scale, the clouds' APIs alone (the adapters fetching in parallel in the bench's process, sharing its one event loop with the simulators): ${Math.max(fetchMs.aws, fetchMs.azure, fetchMs.gcp).toFixed(0)} ms (aws ${fetchMs.aws.toFixed(0)}, azure ${fetchMs.azure.toFixed(0)}, gcp ${fetchMs.gcp.toFixed(0)})`,
        `  controller RSS: ${rssBefore.toFixed(0)} MB before the first sync, ${mem.rssMb.toFixed(0)} MB after the last, ${mem.hwmMb.toFixed(0)} MB peak`,
        `results: ${join(out, `inventory-${stamp}.json`)}`,
        "",
      ].join("\n"),
    );
  } finally {
    if (controller && controller.exitCode === null) {
      const exited = new Promise((r) => controller!.once("exit", r));
      controller.kill("SIGTERM");
      await exited;
    }
    await Promise.all([aws.close(), azure.close(), gcp.close()]);
    await rm(dir, { recursive: true, force: true });
  }
}

function seed(store: SimStore, cloud: "aws" | "azure" | "gcp", n: number, region: string, zone: string, network: string): void {
  const octet2 = { aws: 10, azure: 20, gcp: 30 }[cloud];
  store.addNetwork({ id: network, name: network, region, cidrs: [`10.${octet2}.0.0/16`], subnets: [{ id: `${network}-sub`, name: `${network}-sub`, cidr: `10.${octet2}.0.0/16`, zone }] });
  for (let i = 0; i < n; i++) {
    const id = cloud === "aws" ? `i-0${i.toString(16).padStart(16, "0")}` : cloud === "azure" ? `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}` : `bench-${i}`;
    store.addInstance({
      id,
      name: `${cloud}-vm-${i}`,
      region,
      zone,
      network,
      subnet: `${network}-sub`,
      privateIp: `10.${octet2}.${(i >> 8) & 255}.${i & 255}`,
      tags: { env: "bench", team: `t${i % 17}`, "weft:namespace": "bench" },
    });
  }
}

async function timeFetches(awsUrl: string, azure: { url: string; caPem: string }, gcpUrl: string): Promise<{ aws: number; azure: number; gcp: number }> {
  process.env.AWS_ACCESS_KEY_ID ??= "AKIAWEFTBENCH0000000";
  process.env.AWS_SECRET_ACCESS_KEY ??= "bench";
  const credential = { getToken: async () => ({ token: "bench", expiresOnTimestamp: Date.now() + 3_600_000 }) };
  const adapters = {
    aws: new AwsInventory({ account: "111122223333", regions: ["us-east-1"], endpoint: awsUrl }),
    azure: new AzureInventory({ subscriptionId: "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10", endpoint: azure.url, caPem: azure.caPem, credential }),
    gcp: new GcpInventory({ project: "weft-bench", apiEndpoint: gcpUrl, accessToken: "bench" }),
  };
  const time = async (a: { fetch(): Promise<{ instances: unknown[]; complete: boolean }> }) => {
    const t0 = performance.now();
    const snap = await a.fetch();
    if (!snap.complete) throw new Error("a direct fetch was incomplete");
    return performance.now() - t0;
  };
  const [aws, az, gcp] = await Promise.all([time(adapters.aws), time(adapters.azure), time(adapters.gcp)]);
  return { aws, azure: az, gcp };
}

async function connect(stateDir: string, child: ChildProcess, stderr: () => string): Promise<ControllerClient> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`controller exited with ${child.exitCode}: ${stderr()}`);
    if (existsSync(join(stateDir, ControllerFiles.apiSocket)) && existsSync(join(stateDir, ControllerFiles.adminToken))) {
      const client = new ControllerClient({ socketPath: join(stateDir, ControllerFiles.apiSocket), adminToken: (await readFile(join(stateDir, ControllerFiles.adminToken), "utf8")).trim() });
      if ((await client.raw("GET", "/healthz").catch(() => undefined))?.status === 200) return client;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`controller not ready after 30 s: ${stderr()}`);
}

function written(r: InventorySyncResult): number {
  return r.accounts.reduce((n, a) => n + a.changes.added + a.changes.updated + a.changes.deleted, 0);
}

function memory(pid: number): { rssMb: number; hwmMb: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
    return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
  } catch {
    return { rssMb: Number.NaN, hwmMb: Number.NaN };
  }
}

const ratio = (a: number, b: number) => `${((a / b) * 100).toFixed(1)} %`;

main().then(
  () => process.exit(0),
  (err: unknown) => {
    say(`weft bench inventory: ${(err as Error).message}`);
    process.exit(1);
  },
);
