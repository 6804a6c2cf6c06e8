/**
 * `weft lab up | down | status | exec | demo`: the multi-cloud lab on this machine.
 * `demo` brings up the lab, the controller and an agent on every host, and
 * prints the mesh until interrupted (or once, with --once, then tears down).
 */
import { rm } from "node:fs/promises";
import { LabCluster, labDir, labDown, labExec, labStatus, labUp, type LabOptions } from "@weft/lab";
import type { Command } from "commander";
import { createLogger } from "../log.js";
import { age, formatTable, printJson, printTable } from "../output.js";
import { untilSignal } from "./signals.js";

interface LabFlags {
  prefix?: string;
}

const labOptions = (f: LabFlags): LabOptions => ({ ...(f.prefix ? { prefix: f.prefix } : {}), logger: createLogger(process.env.WEFT_LOG_LEVEL ?? "warn").child({ component: "lab" }) });

export function registerLab(program: Command): void {
  const lab = program.command("lab").description("the multi-cloud lab: network namespaces modelling AWS, Azure, GCP and on-prem").option("--prefix <name>", "namespace prefix of the lab", "weft");

  lab
    .command("up")
    .description("build the lab (safe to run twice)")
    .action(async (_o: unknown, cmd: Command) => {
      const r = await labUp(labOptions(cmd.optsWithGlobals<LabFlags>()));
      process.stdout.write(`lab up: ${r.changes.length} changes in ${r.durationMs} ms\n`);
    });

  lab
    .command("down")
    .description("remove everything the lab made, and nothing else")
    .action(async (_o: unknown, cmd: Command) => {
      const r = await labDown(labOptions(cmd.optsWithGlobals<LabFlags>()));
      process.stdout.write(`lab down: removed ${r.removed.length} namespaces in ${r.durationMs} ms\n`);
    });

  lab
    .command("status")
    .description("hosts with their underlay and overlay addresses")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const hosts = await labStatus(labOptions(cmd.optsWithGlobals<LabFlags>()));
      if (o.json) return printJson(hosts);
      printTable(
        ["HOST", "SITE", "NETNS", "PRIVATE", "PUBLIC", "OVERLAY", "UP"],
        hosts.map((h) => [h.name, h.site, h.netns, h.underlay.private, h.underlay.public ?? "-", h.overlay ?? "-", h.up ? "yes" : "no"]),
      );
    });

  lab
    .command("exec")
    .description("run a command inside a lab host: weft lab exec aws-1 -- wg show")
    .argument("<host>", "aws-1, azure-2, onprem-1, ctl, …")
    .argument("<command...>", "the command and its arguments")
    .action(async (host: string, argv: string[], _o: unknown, cmd: Command) => {
      const r = await labExec(labOptions(cmd.optsWithGlobals<LabFlags>()), host, argv, { stdio: "inherit", timeoutMs: 24 * 3600_000 });
      process.exitCode = r.exitCode ?? 1;
    });

  lab
    .command("demo")
    .description("lab + controller + an agent on every host; prints the mesh until Ctrl-C")
    .option("--once", "print the table once the mesh is up, then tear everything down")
    .option("--timeout <seconds>", "how long to wait for the full mesh", "120")
    .action(async (o: { once?: boolean; timeout: string }, cmd: Command) => {
      await runDemo(labOptions(cmd.optsWithGlobals<LabFlags>()), { once: Boolean(o.once), timeoutMs: Number(o.timeout) * 1000 });
    });
}

async function runDemo(opts: LabOptions, o: { once: boolean; timeoutMs: number }): Promise<void> {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const cluster = new LabCluster(opts);
  const interrupted = untilSignal();
  let failed = false;
  try {
    say("==> building the lab: aws, azure, gcp (1:1 NAT) and onprem (masquerade)");
    // The demo starts from nothing: a previous run's lab and kept state are cleared first.
    await labDown(opts);
    await rm(labDir(opts), { recursive: true, force: true });
    await labUp(opts);
    say(`==> starting the controller in the lab's ctl namespace (${cluster.controllerUrl})`);
    await cluster.startController();
    const client = await cluster.client();
    const key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "lab demo" });
    say(`==> join key ${key.id} created; starting an agent on each of ${cluster.topology.hosts.length} hosts`);
    const started = Date.now();
    await Promise.all(cluster.topology.hosts.map((h) => cluster.startAgent(h.name, key.key)));
    await Promise.race([cluster.waitForFullMesh(o.timeoutMs), interrupted.then(() => Promise.reject(new Error("interrupted")))]);
    say(`==> full mesh: every host has a handshake with every other host (${((Date.now() - started) / 1000).toFixed(1)} s after agent start)\n`);
    process.stdout.write(`${await meshTable(cluster)}\n`);
    if (!o.once) {
      say(`\nlogs: ${cluster.logDir}    admin: weft nodes list --controller-state-dir ${cluster.controllerStateDir}`);
      say("refreshing every 5 s; Ctrl-C tears everything down");
      let stop = false;
      void interrupted.then(() => (stop = true));
      while (!stop) {
        await Promise.race([new Promise((r) => setTimeout(r, 5000)), interrupted]);
        if (!stop) process.stdout.write(`\n${new Date().toISOString()}\n${await meshTable(cluster)}\n`);
      }
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

async function meshTable(cluster: LabCluster): Promise<string> {
  const nodes = await (await cluster.client()).listNodes();
  const now = Date.now() / 1000;
  const rows = await Promise.all(
    cluster.topology.hosts.map(async (h) => {
      const hs = await cluster.handshakes(h.name);
      const times = [...hs.values()].filter((t) => t > 0);
      const node = nodes.find((n) => n.name === h.name);
      return [h.name, h.site, node?.overlayAddress ?? "-", `${times.filter((t) => now - t < 180).length}/${hs.size}`, age(times.length ? Math.max(...times) : undefined), node?.status ?? "-"];
    }),
  );
  return formatTable(["NODE", "SITE", "OVERLAY", "PEERS WITH HANDSHAKE", "LAST HANDSHAKE", "STATUS"], rows);
}
