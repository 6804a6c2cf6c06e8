/**
 * The agent as a host service, for `weft up`, `weft down` and `weft service`.
 *
 * Where systemd runs (/run/systemd/system exists) that is weft-agent.service. Without systemd — a
 * container, a chroot, the package's own tests — weft runs what the unit runs itself: the unit's
 * ExecStart with its Environment, its capability bounding set (setpriv), NoNewPrivileges, UMask,
 * StateDirectory and RuntimeDirectory, all read from the installed unit file so the two cannot
 * drift; output to /var/log/weft/agent.log, pid in /run/weft/agent.pid. What it cannot give is the
 * unit's filesystem and system-call sandbox, and nothing restarts a crashed agent.
 * `parseUnit` and `directArgv` decide (pure); the services act.
 */
import { spawn, execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { UsageError } from "../errors.js";

const execFileAsync = promisify(execFile);

/** Where the installed package and `weft up` keep things. */
export const HOST_PATHS = {
  configFile: "/etc/weft/agent.yaml",
  joinKeyFile: "/etc/weft/join-key",
  unitName: "weft-agent.service",
  unitFiles: ["/lib/systemd/system/weft-agent.service", "/usr/lib/systemd/system/weft-agent.service", "/etc/systemd/system/weft-agent.service"],
  systemdRunDir: "/run/systemd/system",
  pidFile: "/run/weft/agent.pid",
  logFile: "/var/log/weft/agent.log",
} as const;

/** `weft up`, `down` and `service` change the host's network and services: root only, said before anything is touched. */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new UsageError(`${what} changes this host's network and services: run it as root`);
}

/** The environment systemd gives a system service before the unit's Environment= lines. */
const SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface UnitExec {
  execStart: string[];
  environment: Record<string, string>;
  /** Capability names (`CAP_NET_ADMIN`); undefined: the bounding set is not limited. */
  capabilities: string[] | undefined;
  noNewPrivileges: boolean;
  umask: string | undefined;
  /** Relative to /var/lib and /run, as in the unit. */
  stateDirectories: string[];
  runtimeDirectories: string[];
  stateDirectoryMode: string | undefined;
  timeoutStopSeconds: number;
}

/**
 * Reads the [Service] settings the direct mode reproduces. Refuses what it cannot reproduce
 * faithfully (ExecStart prefixes, quoting, specifiers) rather than run something else.
 */
export function parseUnit(text: string, source = "unit file"): UnitExec {
  const service: [string, string][] = [];
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1]) {
      section = header[1];
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv?.[1] || kv[2] === undefined) throw new UsageError(`${source}: cannot read line ${JSON.stringify(line)}`);
    if (section === "Service") service.push([kv[1], kv[2].trim()]);
  }
  const values = (key: string) => service.filter(([k]) => k === key).map(([, v]) => v);
  const last = (key: string) => values(key).at(-1);
  const words = (v: string) => v.split(/\s+/).filter((w) => w !== "");

  const exec = values("ExecStart");
  if (exec.length !== 1 || !exec[0]) throw new UsageError(`${source}: want exactly one ExecStart=, found ${exec.length}`);
  if (/["'\\%$]/.test(exec[0]) || /^[-+!@:]/.test(exec[0])) throw new UsageError(`${source}: ExecStart=${exec[0]} uses quoting, specifiers or prefixes the direct mode does not reproduce`);

  const environment: Record<string, string> = {};
  for (const v of values("Environment")) {
    for (const assignment of words(v)) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(assignment);
      if (!m?.[1] || m[2] === undefined || /["'\\%$]/.test(assignment)) throw new UsageError(`${source}: Environment=${v} is not a plain NAME=value list`);
      environment[m[1]] = m[2];
    }
  }

  // CapabilityBoundingSet= lines combine: an empty one resets, `~` inverts (not supported here).
  let capabilities: string[] | undefined;
  for (const v of values("CapabilityBoundingSet")) {
    if (v.startsWith("~")) throw new UsageError(`${source}: CapabilityBoundingSet=${v}: inverted sets are not supported by the direct mode`);
    capabilities = v === "" ? [] : [...(capabilities ?? []), ...words(v)];
  }
  for (const c of capabilities ?? []) if (!/^CAP_[A-Z_]+$/.test(c)) throw new UsageError(`${source}: ${c} is not a capability name`);

  const bool = (v: string | undefined) => v !== undefined && /^(yes|true|on|1)$/i.test(v);
  const umask = last("UMask");
  if (umask !== undefined && !/^0?[0-7]{3}$/.test(umask)) throw new UsageError(`${source}: UMask=${umask} is not an octal mask`);
  const stop = last("TimeoutStopSec");
  const stopSeconds = stop === undefined ? 90 : Number(/^(\d+)s?$/.exec(stop)?.[1] ?? NaN);
  if (!Number.isFinite(stopSeconds)) throw new UsageError(`${source}: TimeoutStopSec=${stop}: want seconds like 20s`);

  const dirs = (key: string) => values(key).flatMap(words);
  for (const d of [...dirs("StateDirectory"), ...dirs("RuntimeDirectory")]) {
    if (d.startsWith("/") || d.split("/").includes("..")) throw new UsageError(`${source}: directory ${d} must be relative, without ..`);
  }
  return {
    execStart: words(exec[0]),
    environment,
    capabilities,
    noNewPrivileges: bool(last("NoNewPrivileges")),
    umask,
    stateDirectories: dirs("StateDirectory"),
    runtimeDirectories: dirs("RuntimeDirectory"),
    stateDirectoryMode: last("StateDirectoryMode"),
    timeoutStopSeconds: stopSeconds,
  };
}

/** The argv that runs the unit's ExecStart with its privileges, as systemd would, without systemd. */
export function directArgv(unit: UnitExec, setpriv = "setpriv"): string[] {
  const privileges = [
    ...(unit.capabilities === undefined ? [] : [`--bounding-set=-all${unit.capabilities.map((c) => `,+${c.slice(4).toLowerCase()}`).join("")}`, "--inh-caps=-all"]),
    ...(unit.noNewPrivileges ? ["--no-new-privs"] : []),
  ];
  const argv = privileges.length > 0 ? [setpriv, ...privileges, "--", ...unit.execStart] : unit.execStart;
  return unit.umask === undefined ? argv : ["/bin/sh", "-c", `umask ${unit.umask} && exec "$@"`, "weft-agent", ...argv];
}

export interface AgentService {
  readonly kind: "systemd" | "direct";
  /** Start, or restart when running (a changed config is read at start); systemd: also enable at boot. */
  restart(): Promise<void>;
  /** Stop; with `disable`, also not at boot any more. Nothing running is fine. */
  stop(opts?: { disable?: boolean }): Promise<void>;
  isRunning(): Promise<boolean>;
  /** Where to look when it fails, with the last lines of its log when they can be read. */
  diagnose(): Promise<string>;
}

/** systemd when it is PID 1's init (sd_booted), else the direct mode. */
export function detectAgentService(paths = HOST_PATHS): AgentService {
  return existsSync(paths.systemdRunDir) ? new SystemdService(paths.unitName) : new DirectService(paths);
}

class SystemdService implements AgentService {
  readonly kind = "systemd";
  constructor(private readonly unit: string) {}

  async restart(): Promise<void> {
    await systemctl("enable", "--quiet", this.unit);
    await systemctl("restart", this.unit);
  }

  async stop(opts: { disable?: boolean } = {}): Promise<void> {
    if (opts.disable) await systemctl("disable", "--quiet", "--now", this.unit);
    else await systemctl("stop", this.unit);
  }

  async isRunning(): Promise<boolean> {
    return execFileAsync("systemctl", ["is-active", "--quiet", this.unit]).then(
      () => true,
      () => false,
    );
  }

  async diagnose(): Promise<string> {
    const journal = await execFileAsync("journalctl", ["-u", this.unit, "-n", "20", "--no-pager", "-o", "cat"]).then(
      (r) => r.stdout.trim(),
      () => "",
    );
    return `see \`journalctl -u ${this.unit}\`${journal ? `; its last lines:\n${journal}` : ""}`;
  }
}

async function systemctl(...args: string[]): Promise<void> {
  try {
    await execFileAsync("systemctl", args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`systemctl ${args.join(" ")} failed${stderr ? `: ${stderr}` : ""}`, { cause: err });
  }
}

class DirectService implements AgentService {
  readonly kind = "direct";
  /** The agent this process started, and how it ended: its own exit, not a read of /proc, says whether it runs. */
  #started: { pid: number; exit?: string } | undefined;
  constructor(private readonly paths: typeof HOST_PATHS) {}

  private async unit(): Promise<UnitExec> {
    const file = this.paths.unitFiles.find((f) => existsSync(f));
    if (!file) throw new UsageError(`${this.paths.unitName} is not installed (looked in ${this.paths.unitFiles.join(", ")}): install the weft package`);
    return parseUnit(await readFile(file, "utf8"), file);
  }

  async restart(): Promise<void> {
    const unit = await this.unit();
    await this.stop();
    for (const d of unit.stateDirectories) await mkdir(`/var/lib/${d}`, { recursive: true, mode: Number.parseInt(unit.stateDirectoryMode ?? "0755", 8) });
    for (const d of unit.runtimeDirectories) await mkdir(`/run/${d}`, { recursive: true, mode: 0o755 });
    await mkdir(dirname(this.paths.logFile), { recursive: true, mode: 0o750 });
    await mkdir(dirname(this.paths.pidFile), { recursive: true, mode: 0o755 });
    const log = await open(this.paths.logFile, "a", 0o600);
    try {
      const [file, ...args] = directArgv(unit);
      if (!file) throw new UsageError("the unit's ExecStart is empty");
      const child = spawn(file, args, { detached: true, stdio: ["ignore", log.fd, log.fd], env: { PATH: SERVICE_PATH, ...unit.environment } });
      const pid = await new Promise<number>((resolve, reject) => {
        child.once("error", (err) => reject(new Error(`cannot start ${file}: ${err.message}`, { cause: err })));
        child.once("spawn", () => resolve(child.pid ?? -1));
      });
      const started: { pid: number; exit?: string } = { pid };
      child.once("exit", (code, signal) => (started.exit = signal ? `killed by ${signal}` : `exited with status ${code}`));
      this.#started = started;
      child.unref();
      await writeFile(this.paths.pidFile, `${pid}\n`, { mode: 0o644 });
    } finally {
      await log.close();
    }
  }

  async stop(): Promise<void> {
    this.#started = undefined;
    const pid = await this.runningPid();
    if (pid !== undefined) {
      const unit = await this.unit().catch(() => undefined);
      process.kill(pid, "SIGTERM");
      const deadline = Date.now() + (unit?.timeoutStopSeconds ?? 20) * 1000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) process.kill(pid, "SIGKILL");
      while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
    }
    await rm(this.paths.pidFile, { force: true });
  }

  async isRunning(): Promise<boolean> {
    // Started here: its exit event is exact. Reading /proc/<pid>/cmdline is not while the process
    // execs (sh → setpriv → sh → node): the kernel shows an empty argv for a moment.
    if (this.#started) return this.#started.exit === undefined;
    return (await this.runningPid()) !== undefined;
  }

  async diagnose(): Promise<string> {
    const text = await readFile(this.paths.logFile, "utf8").catch(() => "");
    const tail = text.trimEnd().split("\n").slice(-20).join("\n");
    const ended = this.#started?.exit ? `the agent (pid ${this.#started.pid}) ${this.#started.exit}; ` : "";
    return `${ended}see ${this.paths.logFile}${tail ? `; its last lines:\n${tail}` : ""}`;
  }

  /** The pid in the pid file, if that process is alive and is a weft agent (not a reused pid). */
  private async runningPid(): Promise<number | undefined> {
    const text = await readFile(this.paths.pidFile, "utf8").catch(() => "");
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return undefined;
    // Through sh/setpriv the process execs into `node …/agent.cjs agent`; its argv names "agent" at each
    // step, but reads empty for a moment during an exec: read again then.
    for (let attempt = 0; attempt < 5; attempt++) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (cmdline !== "") return cmdline.split("\0").includes("agent") ? pid : undefined;
      if (!alive(pid)) return undefined;
      await new Promise((r) => setTimeout(r, 20));
    }
    return undefined;
  }
}

/** The process exists and is not a zombie (state Z in /proc/<pid>/stat: exited, not yet reaped). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1] !== "Z";
  } catch {
    return false;
  }
}
