/**
 * The scale benchmark's controller: the built `weft controller` in its own process with its
 * embedded nats-server, on loopback, configured for a large fleet (stated in the config file it
 * writes, defaults untouched): the enrollment rate limit raised (every simulated agent enrolls
 * from 127.0.0.1) and workload prefixes small enough that 10,000 nodes fit the workload range.
 * Also: the nats-server's pid and monitoring URL (from the config the controller wrote), /varz,
 * and a NATS crash (SIGKILL; the controller's supervisor starts it again).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ControllerClient, ControllerFiles } from "@weft/protocol";

export interface ScaleController {
  pid: number;
  apiUrl: string;
  caHash: string;
  client: ControllerClient;
  logPath: string;
  /** The nats-server running now (it changes after a restart). */
  natsPid(): number;
  varz(): Promise<{ outBytes: number; outMsgs: number; connections: number }>;
  /** SIGKILLs the nats-server; resolves once a new one answers /healthz. */
  restartNats(): Promise<void>;
  stop(): Promise<void>;
}

export async function startScaleController(o: { cli: string; dir: string; apiPort: number; natsPort: number; /** Write a V8 CPU profile of the controller here (on exit). */ profileDir?: string | undefined; /** The controller's log level (default $WEFT_LOG_LEVEL, else warn). */ logLevel?: string | undefined }): Promise<ScaleController> {
  const stateDir = join(o.dir, "controller");
  const config = join(o.dir, "controller.yaml");
  await writeFile(
    config,
    [
      "# Scale benchmark: every simulated agent enrolls from 127.0.0.1.",
      "api:",
      "  rateLimit:",
      "    max: 1000000",
      "    windowSeconds: 60",
      "overlay:",
      "  # /28 per node: 65,536 workload prefixes in the default /12 (the default /24 fits 4,096 nodes).",
      "  workloadPrefixLength: 28",
      "",
    ].join("\n"),
  );
  const logPath = join(o.dir, "controller.log");
  const log = await open(logPath, "a");
  const profile = o.profileDir ? ["--cpu-prof", "--cpu-prof-dir", o.profileDir] : [];
  const child = spawn(process.execPath, [...profile, o.cli, "controller", "--config", config, "--state-dir", stateDir, "--api-host", "127.0.0.1", "--api-port", String(o.apiPort), "--nats-host", "127.0.0.1", "--nats-port", String(o.natsPort)], {
    stdio: ["ignore", log.fd, log.fd],
    env: { ...process.env, WEFT_LOG_LEVEL: o.logLevel ?? process.env.WEFT_LOG_LEVEL ?? "warn" },
  });
  child.on("exit", () => void log.close().catch(() => undefined));
  const client = await ready(stateDir, child, logPath);
  const natsDir = join(stateDir, "nats");
  // Read afresh each time: a restarted server gets a new monitoring port.
  const monitorUrl = () => {
    const monitor = /^http: "([^"]+)"/m.exec(readFileSync(join(natsDir, "nats-server.conf"), "utf8"))?.[1];
    if (!monitor) throw new Error(`no monitoring address in ${join(natsDir, "nats-server.conf")}`);
    return `http://${monitor}`;
  };
  const healthy = async () => {
    try {
      return (await fetch(`${monitorUrl()}/healthz`)).ok;
    } catch {
      return false; // the config is being rewritten, or the server is not up yet
    }
  };
  const natsPid = () => Number(readFileSync(join(natsDir, "nats-server.pid"), "utf8").trim());
  const caHash = (await readFile(join(stateDir, ControllerFiles.tlsDir, ControllerFiles.caHash), "utf8")).trim();
  return {
    pid: child.pid ?? 0,
    apiUrl: `https://127.0.0.1:${o.apiPort}`,
    caHash,
    client,
    logPath,
    natsPid,
    varz: async () => {
      const v = (await (await fetch(`${monitorUrl()}/varz`)).json()) as { out_bytes: number; out_msgs: number; connections: number };
      return { outBytes: v.out_bytes, outMsgs: v.out_msgs, connections: v.connections };
    },
    restartNats: async () => {
      const old = natsPid();
      process.kill(old, "SIGKILL");
      const deadline = Date.now() + 60_000;
      for (;;) {
        const pid = existsSync(join(natsDir, "nats-server.pid")) ? Number(readFileSync(join(natsDir, "nats-server.pid"), "utf8").trim() || "0") : 0;
        if (pid !== old && pid > 0 && (await healthy())) return;
        if (Date.now() > deadline) throw new Error("the controller did not restart its nats-server within 60 s");
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: () => stop(child),
  };
}

async function ready(stateDir: string, child: ChildProcess, logPath: string): Promise<ControllerClient> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`controller exited with ${child.exitCode}; see ${logPath}`);
    if (existsSync(join(stateDir, ControllerFiles.apiSocket)) && existsSync(join(stateDir, ControllerFiles.adminToken))) {
      const client = new ControllerClient({ socketPath: join(stateDir, ControllerFiles.apiSocket), adminToken: (await readFile(join(stateDir, ControllerFiles.adminToken), "utf8")).trim() });
      if ((await client.raw("GET", "/healthz").catch(() => undefined))?.status === 200) return client;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`controller not ready after 60 s; see ${logPath}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}
