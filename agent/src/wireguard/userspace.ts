/**
 * Starts userspace `wireguard-go` for one interface, detached so the interface outlives the
 * agent (a restart must not tear down the data plane). `wireguard-go NAME` creates the TUN
 * device and the UAPI socket, forks a daemon and exits; we then wait, bounded, until both
 * the link and `/var/run/wireguard/NAME.sock` are visible.
 */
import { spawn } from "node:child_process";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CommandError } from "../exec/errors.js";
import { InterfaceError } from "./errors.js";
import { readLink, type LinkState } from "./link.js";
import { netnsPrefix, type CommandRunner } from "../exec/runner.js";

/** Where wireguard-go puts UAPI sockets. One directory for every network namespace. */
export const UAPI_SOCKET_DIR = "/var/run/wireguard";

export interface StartWireguardGoOptions {
  name: string;
  binary: string;
  runner: CommandRunner;
  /** Bound on the whole start (launcher exit + link + socket); default 5 s. */
  timeoutMs?: number;
  socketDir?: string;
}

/** Starts `wireguard-go NAME` and resolves with the link once it and the UAPI socket exist. */
export async function startWireguardGo(options: StartWireguardGoOptions): Promise<LinkState> {
  const { name, binary, runner } = options;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const deadline = Date.now() + timeoutMs;
  const argv = [...netnsPrefix(runner.netns), binary, name];
  await runLauncher(argv, timeoutMs);
  const socket = join(options.socketDir ?? UAPI_SOCKET_DIR, `${name}.sock`);
  for (;;) {
    const [link, socketUp] = await Promise.all([readLink(runner, name).catch(() => undefined), fileExists(socket)]);
    const linkUp = link !== undefined;
    if (linkUp && socketUp) return link;
    if (Date.now() >= deadline) {
      throw new InterfaceError(
        name,
        `wireguard-go started but ${linkUp ? `UAPI socket ${socket}` : "the link"} did not appear within ${timeoutMs} ms`,
      );
    }
    await sleep(20);
  }
}

/** Environment for the launcher: no foreground flag (we want it to daemonize), no log level
 * (with LOG_LEVEL set the daemon keeps our stdio pipes and dies of SIGPIPE once we close them),
 * no inherited WG_TUN_FD/WG_UAPI_FD. */
function launcherEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("WG_") && k !== "LOG_LEVEL") env[k] = v;
  }
  return env;
}

function runLauncher(argv: readonly string[], timeoutMs: number): Promise<void> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new TypeError("runLauncher: empty argv"));
  return new Promise((resolve, reject) => {
    // detached: own process group, so a Ctrl-C or group kill aimed at the agent spares the daemon.
    const child = spawn(file, args, {
      detached: true,
      // wireguard-go logs its errors (e.g. "UAPI listen error") to stdout, the banner to stderr.
      stdio: ["ignore", "pipe", "pipe"],
      env: launcherEnv(),
      timeout: timeoutMs,
    });
    const output: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => output.push(b));
    child.stderr.on("data", (b: Buffer) => output.push(b));
    child.on("error", (e) =>
      reject(new CommandError(argv, { exitCode: null, stderr: "", reason: `cannot run: ${e.message}` }, { cause: e })),
    );
    // "close" (all output read) follows the launcher's exit: the daemon it forks gets
    // /dev/null, not our pipes, since LOG_LEVEL is stripped from its environment.
    child.on("close", (code, signal) => {
      child.unref();
      if (code === 0) return resolve();
      const stderr = stripBanner(Buffer.concat(output).toString("utf8"));
      reject(new CommandError(argv, { exitCode: code, signal, stderr }));
    });
  });
}

/** wireguard-go prints a boxed "kernel has first class support" banner on every start, even
 * when the kernel has no module; drop it from error output. The box's characters (┌ │ └) are
 * written as escapes: one of them literally in the agent's bundle made V8 hold its whole source
 * as two-byte characters (packaging/bundle.mjs refuses that). */
export function stripBanner(stderr: string): string {
  return stderr
    .split("\n")
    .filter((line) => !/^[\u250c\u2502\u2514]/.test(line))
    .join("\n")
    .trim();
}

async function fileExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
