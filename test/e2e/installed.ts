/**
 * Probes for the installed-package suite (install.test.ts): what a unit file grants (capabilities,
 * the system calls its filter admits), running the installed agent under a given capability set,
 * what a host has left after leaving, the pinned maps' kernel ids, a repacked newer package, and a
 * one-file HTTP server on a lab host.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { spawnInHost, type LabOptions } from "@weft/lab";
import { sleep } from "./mesh.js";
import type { LabVm } from "./vm.js";

const execFileAsync = promisify(execFile);
/** The same package under another version (what a newer release installs like), in `dir`. */
export async function repack(deb: string, version: string, dir: string): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), "weft-e2e-repack-"));
  try {
    await execFileAsync("dpkg-deb", ["-R", deb, join(work, "root")]);
    const control = join(work, "root/DEBIAN/control");
    await writeFile(control, (await readFile(control, "utf8")).replace(/^Version: .*$/m, `Version: ${version}`));
    const out = join(dir, `weft_${version}_amd64.deb`);
    await execFileAsync("dpkg-deb", ["--root-owner-group", "-Zgzip", "-b", join(work, "root"), out]);
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Pinned map name → kernel map id, from the VM's bpf filesystem (the same id means the same map). */
export async function pinnedMapIds(vm: LabVm): Promise<Map<string, number>> {
  const dir = join(vm.root, "sys/fs/bpf/weft");
  const ids = new Map<string, number>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) await walk(path);
      else {
        const info = await execFileAsync("bpftool", ["-j", "map", "show", "pinned", path]).then((r) => JSON.parse(r.stdout) as { id?: number }, () => undefined);
        if (info?.id !== undefined) ids.set(path.slice(dir.length + 1), info.id);
      }
    }
  };
  await walk(dir);
  return ids;
}

/**
 * The system calls a unit's SystemCallFilter= allow list admits (groups expanded through
 * `systemd-analyze syscall-filter`, plus @default, which systemd always allows).
 */
export async function allowedSyscalls(unit: string): Promise<Set<string>> {
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of (await execFileAsync("systemd-analyze", ["syscall-filter"])).stdout.split("\n")) {
    if (/^@\S+$/.test(line)) groups.set(line, (current = []));
    else if (/^\s+@?[a-z0-9_-]+$/.test(line)) current?.push(line.trim());
  }
  const out = new Set<string>();
  const add = (name: string, seen = new Set<string>()): void => {
    if (!name.startsWith("@")) return void out.add(name);
    if (seen.has(name)) return;
    seen.add(name);
    const members = groups.get(name);
    if (!members) throw new Error(`systemd-analyze knows no syscall group ${name}`);
    for (const m of members) add(m, seen);
  };
  add("@default");
  const lines = [...unit.matchAll(/^SystemCallFilter=(.*)$/gm)].map((m) => m[1]!.trim());
  for (const l of lines.filter((x) => !x.startsWith("~"))) for (const name of l.split(/\s+/)) add(name);
  for (const l of lines.filter((x) => x.startsWith("~"))) {
    const denied = new Set<string>();
    const before = new Set(out);
    out.clear();
    for (const name of l.slice(1).trim().split(/\s+/)) add(name);
    for (const c of out) denied.add(c);
    out.clear();
    for (const c of before) if (!denied.has(c)) out.add(c);
  }
  return out;
}

/** CapabilityBoundingSet of a unit file, as names. */
export function unitCapabilities(unit: string): string[] {
  return (/^CapabilityBoundingSet=(.*)$/m.exec(unit)?.[1] ?? "").split(/\s+/).filter((c) => c !== "");
}

const CAP_NUMBERS: Record<string, number> = { CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_SYS_ADMIN: 21, CAP_SYS_RESOURCE: 24, CAP_PERFMON: 38, CAP_BPF: 39, CAP_DAC_OVERRIDE: 1 };
export function capMask(caps: string[]): bigint {
  return caps.reduce((m, c) => {
    const n = CAP_NUMBERS[c];
    if (n === undefined) throw new Error(`capMask: add ${c}'s number`);
    return m | (1n << BigInt(n));
  }, 0n);
}

/**
 * Runs the installed agent in the VM under exactly `caps` (as the unit would: bounding set, no new
 * privileges) and reports whether it came online — connected, synced, its BPF programs pinned —
 * within `timeoutMs`. The agent is stopped afterwards.
 */
export async function runAgentWith(vm: LabVm, caps: string[], timeoutMs: number): Promise<{ online: boolean; why: string }> {
  const set = ["-all", ...caps.map((c) => `+${c.slice(4).toLowerCase()}`)].join(",");
  const since = Date.now();
  const script = `exec setpriv --bounding-set=${set} --inh-caps=-all --no-new-privs -- weft agent --config /etc/weft/agent.yaml >/tmp/caps.log 2>&1`;
  const agent = vm.sh(script, { timeoutMs: timeoutMs + 30_000 });
  let exited: { exitCode: number | null } | undefined;
  void agent.then((r) => (exited = r));
  let why = "timed out";
  try {
    for (;;) {
      if (exited) {
        const log = await readFile(join(vm.root, "tmp/caps.log"), "utf8").catch(() => "");
        const last = log.trim().split("\n").at(-1) ?? "";
        why = `exited ${exited.exitCode}: ${/"msg":"([^"]*)"/.exec(last)?.[1] ?? last.slice(0, 200)}`;
        return { online: false, why };
      }
      const status = await readFile(join(vm.root, "var/lib/weft/agent/status.json"), "utf8")
        .then((t) => JSON.parse(t) as { nats?: string; stale?: boolean; updatedAt?: string })
        .catch(() => undefined);
      const pinned = await readdir(join(vm.root, "sys/fs/bpf/weft")).catch(() => []);
      if (status?.nats === "connected" && status.stale === false && Date.parse(status.updatedAt ?? "") >= since && pinned.length > 0) return { online: true, why: "" };
      if (Date.now() - since > timeoutMs) return { online: false, why: `not online after ${timeoutMs} ms (status ${JSON.stringify(status)})` };
      await sleep(200);
    }
  } finally {
    for (const p of await vm.processes()) if (/agent\.cjs agent/.test(p.cmdline)) process.kill(p.pid, "SIGTERM");
    await agent.catch(() => undefined);
  }
}

/** What a joined host must not have after leaving: interfaces, routes, wireguard-go, pins, units, rules, state. */
export async function leftovers(vm: LabVm): Promise<string[]> {
  const found: string[] = [];
  const links = await vm.exec(["ip", "-o", "link", "show"]);
  for (const l of links.stdout.split("\n")) if (/: (weft0|weft-vxlan|wl[0-9a-f]{10})[@:]/.test(l)) found.push(`link: ${l.trim().slice(0, 80)}`);
  const routes = await vm.exec(["ip", "-4", "route", "show"]);
  for (const r of routes.stdout.split("\n")) if (/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./.test(r) || /dev weft0/.test(r)) found.push(`route: ${r.trim()}`);
  for (const p of await vm.processes()) if (/wireguard-go|agent\.cjs agent/.test(p.cmdline)) found.push(`process: ${p.cmdline}`);
  // maps.debug and progs.debug are the kernel's own (bpf_preload), in every bpf filesystem.
  const pins = (await readdir(join(vm.root, "sys/fs/bpf")).catch(() => [])).filter((f) => !/^(maps|progs)\.debug$/.test(f));
  if (pins.length > 0) found.push(`bpffs: ${pins.join(" ")}`);
  const chain = await vm.exec(["iptables", "-w", "5", "-t", "nat", "-S", "WEFT-SNAT"]);
  if (chain.exitCode === 0) found.push("iptables: nat chain WEFT-SNAT");
  const paths = await vm.sh("ls -d /etc/weft /var/lib/weft /var/lib/private/weft /var/log/weft /run/weft /run/wireguard/weft0.sock /etc/systemd/system/multi-user.target.wants/weft-* 2>/dev/null || true");
  for (const p of paths.stdout.trim().split("\n")) if (p !== "") found.push(`file: ${p}`);
  return found;
}

/** A one-file HTTP server on a lab host (not the VM), run by the test's Node in that host's namespace. */
export async function startHttpServer(opts: LabOptions, hostName: string, address: string, file: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = 7180;
  const code = `require("http").createServer((q,s)=>{require("fs").createReadStream(${JSON.stringify(file)}).pipe(s)}).listen(${port}, ${JSON.stringify(address)}, ()=>console.log("ready"))`;
  const child = spawnInHost(opts, hostName, [process.execPath, "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (c) => reject(new Error(`http server on ${hostName} exited ${c}`)));
  });
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}
