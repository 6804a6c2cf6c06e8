/**
 * A lab VM: a clean Debian 12 root filesystem (packaging/test-root.sh, cached) in a lab host's
 * network namespace — the host as a freshly booted VM would be, as far as a chroot goes. Its root
 * is an overlay on the cached root (which is never written), with what a VM's kernel gives it:
 * /proc, a sysfs of the host's namespace, its own bpf filesystem, /dev, an empty /run. Commands
 * run chrooted in the host's namespace with a clean environment; `onHostNetwork` runs them in the
 * machine's namespace instead (fetching Debian packages into the apt cache, before the lab).
 *
 * Everything lives under one directory: `stop()` kills every process whose root is the VM,
 * unmounts and removes it; `start()` first removes what a killed earlier run left there.
 * No systemd runs in it (PID 1 is the machine's), so `weft up` uses its no-systemd mode.
 */
import { spawn } from "node:child_process";
import { readdir, readFile, readlink, mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { labTopology, resolveLabOptions, type LabOptions } from "@weft/lab";

export interface VmOptions {
  lab: LabOptions;
  /** The lab host whose network namespace the VM uses, e.g. `gcp-1`. */
  host: string;
  /** The cached root (read-only lower layer). */
  baseRoot: string;
  /** Working directory of this VM: upper layer, mount point. Removed by stop(). */
  dir: string;
  /** Persistent apt archive cache, bind-mounted at /var/cache/apt/archives. */
  aptArchives: string;
}

export interface VmResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

const VM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export class LabVm {
  readonly root: string;
  readonly netns: string;

  private constructor(readonly opts: VmOptions) {
    this.root = join(opts.dir, "root");
    const host = labTopology({ prefix: resolveLabOptions(opts.lab).prefix }).hosts.find((h) => h.name === opts.host);
    if (!host) throw new Error(`lab VM: no lab host ${opts.host}`);
    this.netns = host.netns;
  }

  /** Mounts the VM's root; removes a leftover VM in the same directory first. */
  static async start(opts: VmOptions): Promise<LabVm> {
    const vm = new LabVm(opts);
    await vm.stop();
    const d = opts.dir;
    await mkdir(join(d, "upper"), { recursive: true });
    await mkdir(join(d, "work"), { recursive: true });
    await mkdir(vm.root, { recursive: true });
    await mkdir(opts.aptArchives, { recursive: true });
    try {
      await run(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=${opts.baseRoot},upperdir=${d}/upper,workdir=${d}/work`, vm.root]);
      await run(["mount", "-t", "proc", "proc", join(vm.root, "proc")]);
      // A sysfs mounted from inside the namespace shows that namespace's interfaces.
      await run(["nsenter", `--net=/run/netns/${vm.netns}`, "mount", "-t", "sysfs", "sysfs", join(vm.root, "sys")]);
      // Its own bpf filesystem, as a VM has: pins made in the VM are seen only there.
      await run(["mount", "-t", "bpf", "bpf", join(vm.root, "sys/fs/bpf")]);
      await run(["mount", "--bind", "/dev", join(vm.root, "dev")]);
      await run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", join(vm.root, "run")]);
      await run(["mount", "--bind", opts.aptArchives, join(vm.root, "var/cache/apt/archives")]);
    } catch (err) {
      await vm.stop();
      throw err;
    }
    return vm;
  }

  /** Runs argv in the VM (chrooted, in the host's namespace), with a clean environment. */
  exec(argv: readonly string[], o: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<VmResult> {
    return runRaw(["nsenter", `--net=/run/netns/${this.netns}`, ...this.chrooted(argv, o.env)], o);
  }

  /** Runs a shell script in the VM. */
  sh(script: string, o: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<VmResult> {
    return this.exec(["/bin/sh", "-c", script], o);
  }

  /** Runs argv chrooted into the VM but on the machine's own network (e.g. apt-get from Debian's mirror). */
  onHostNetwork(argv: readonly string[], o: { timeoutMs?: number } = {}): Promise<VmResult> {
    return runRaw(this.chrooted(argv), o);
  }

  private chrooted(argv: readonly string[], env: Record<string, string> = {}): string[] {
    const vars = Object.entries({ PATH: VM_PATH, HOME: "/root", LANG: "C.UTF-8", ...env }).map(([k, v]) => `${k}=${v}`);
    return ["chroot", this.root, "/usr/bin/env", "-i", ...vars, ...argv];
  }

  /** Pids of every process whose root directory is this VM's. */
  async processes(): Promise<{ pid: number; cmdline: string }[]> {
    const out: { pid: number; cmdline: string }[] = [];
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const root = await readlink(`/proc/${entry}/root`).catch(() => undefined);
      if (root !== this.root) continue;
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0").join(" ").trim();
      out.push({ pid: Number(entry), cmdline });
    }
    return out;
  }

  /** Kills the VM's processes, unmounts everything under its directory and removes it. Safe to call twice. */
  async stop(): Promise<void> {
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      const procs = existsSync(this.root) ? await this.processes() : [];
      for (const p of procs) {
        try {
          process.kill(p.pid, signal);
        } catch {
          // gone already
        }
      }
      if (procs.length > 0) await new Promise((r) => setTimeout(r, signal === "SIGTERM" ? 1500 : 300));
    }
    for (const m of await this.mounts()) {
      const res = await runRaw(["umount", m], {});
      if (res.exitCode !== 0) await runRaw(["umount", "-l", m], {});
    }
    // Never recurse into a mount that is still there (/dev is bound in): refuse instead.
    const left = await this.mounts();
    if (left.length > 0) throw new Error(`lab VM: still mounted, not removing ${this.opts.dir}: ${left.join(", ")}`);
    if (existsSync(this.opts.dir)) await run(["rm", "-rf", "--one-file-system", this.opts.dir]);
  }

  private async mounts(): Promise<string[]> {
    return (await readFile("/proc/self/mounts", "utf8"))
      .split("\n")
      .map((l) => l.split(" ")[1]?.replace(/\\040/g, " "))
      .filter((m): m is string => m !== undefined && (m === this.opts.dir || m.startsWith(`${this.opts.dir}/`)))
      .sort((a, b) => b.length - a.length);
  }
}

async function run(argv: readonly string[]): Promise<string> {
  const res = await runRaw(argv, {});
  if (res.exitCode !== 0) throw new Error(`${argv.join(" ")}: exit ${res.exitCode}: ${res.stderr.trim()}`);
  return res.stdout;
}

function runRaw(argv: readonly string[], o: { input?: string; timeoutMs?: number }): Promise<VmResult> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new TypeError("empty argv"));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], timeout: o.timeoutMs ?? 60_000, env: { PATH: VM_PATH } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.stdin.on("error", () => undefined); // a command that never reads its stdin
    child.on("close", (exitCode) => resolve({ exitCode, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
    child.stdin.end(o.input ?? "");
  });
}
