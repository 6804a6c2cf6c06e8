/**
 * The control group: a WireGuard tunnel between two lab hosts configured by hand, with the same
 * implementation Weft uses here (userspace wireguard-go), as an operator would with `wg` and
 * `ip`: keys from `wg genkey`, one peer each, endpoints = the public (1:1 NAT) addresses, its
 * own address range and UDP port. Nothing of Weft runs on it, so Weft's cost is the difference.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { hostDir, labExec, spawnInHost, type LabOptions } from "@weft/lab";
import { BenchError } from "./errors.js";
import { readDevice, uapiSocket } from "./handshakes.js";

export interface HandEnd {
  host: string;
  /** e.g. `wgb-aws-1`. */
  iface: string;
  /** Tunnel address without prefix length, e.g. `10.200.0.1`. */
  address: string;
  /** Where the other end sends to: this host's public address. */
  publicAddress: string;
}

export interface HandTunnelOptions {
  a: HandEnd;
  b: HandEnd;
  port: number;
  mtu: number;
  /** The wireguard-go binary (a path): the current build or Debian's. */
  binary: string;
}

/** Creates both ends. On failure, what was made is removed again before the error is thrown. */
export async function setUpHandTunnel(opts: LabOptions, t: HandTunnelOptions): Promise<void> {
  for (const end of [t.a, t.b]) {
    if (existsSync(uapiSocket(end.iface)) && (await readDevice(end.iface)) !== undefined) {
      throw new BenchError(`a WireGuard interface named ${end.iface} is already running (its UAPI socket ${uapiSocket(end.iface)} answers); another benchmark?`);
    }
  }
  try {
    const [keyA, keyB] = await Promise.all([keyPair(), keyPair()]);
    await configureEnd(opts, t, t.a, keyA.privateKey, { publicKey: keyB.publicKey, end: t.b });
    await configureEnd(opts, t, t.b, keyB.privateKey, { publicKey: keyA.publicKey, end: t.a });
  } catch (err) {
    await tearDownHandTunnel(opts, t);
    throw err;
  }
}

/** Deletes both interfaces (wireguard-go exits when its TUN goes). Never throws. */
export async function tearDownHandTunnel(opts: LabOptions, t: HandTunnelOptions): Promise<void> {
  await Promise.all(
    [t.a, t.b].map(async (end) => {
      await labExec(opts, end.host, ["ip", "link", "del", "dev", end.iface]).catch(() => undefined);
      for (let i = 0; i < 40 && existsSync(uapiSocket(end.iface)); i++) await sleep(50);
    }),
  );
}

async function configureEnd(opts: LabOptions, t: HandTunnelOptions, self: HandEnd, privateKey: string, peer: { publicKey: string; end: HandEnd }): Promise<void> {
  await startWireguardGo(opts, self.host, self.iface, t.binary);
  // wg reads the private key from a file (never argv); the file lives in the lab's host dir,
  // which labDown removes.
  const dir = join(hostDir(opts, self.host), "bench");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keyFile = join(dir, `${self.iface}.key`);
  await writeFile(keyFile, `${privateKey}\n`, { mode: 0o600 });
  const steps: string[][] = [
    ["wg", "set", self.iface, "listen-port", String(t.port), "private-key", keyFile, "peer", peer.publicKey, "endpoint", `${peer.end.publicAddress}:${t.port}`, "allowed-ips", `${peer.end.address}/32`],
    ["ip", "address", "add", `${self.address}/32`, "dev", self.iface],
    ["ip", "link", "set", "dev", self.iface, "mtu", String(t.mtu), "up"],
    ["ip", "route", "add", `${peer.end.address}/32`, "dev", self.iface],
  ];
  for (const argv of steps) {
    const res = await labExec(opts, self.host, argv);
    if (res.exitCode !== 0) throw new BenchError(`${argv.join(" ")} on ${self.host}: exit ${res.exitCode ?? res.signal}: ${res.stderr.trim()}`);
  }
}

/**
 * `wireguard-go IFACE` daemonizes and exits; wait for its UAPI socket to answer. Started the way
 * the agent starts Weft's (agent/src/wireguard/userspace.ts): detached, in its own session. With
 * the kernel's autogroup scheduling a session is a CPU-share group, so a daemon left in the
 * benchmark's session (with the iperf3 processes) measured 10-20 % faster than Weft's — a
 * difference in how the process was launched, not in the data path.
 */
async function startWireguardGo(opts: LabOptions, host: string, iface: string, binary: string): Promise<void> {
  // No LOG_LEVEL (else the daemon keeps our pipes) and no inherited WG_* descriptors.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "LOG_LEVEL" && !k.startsWith("WG_")));
  const launcher = spawnInHost(opts, host, [binary, iface], { stdio: ["ignore", "pipe", "pipe"], env, detached: true });
  let output = "";
  launcher.stdout?.setEncoding("utf8").on("data", (d: string) => (output += d));
  launcher.stderr?.setEncoding("utf8").on("data", (d: string) => (output += d));
  const code = await new Promise<number | null>((resolve) => {
    launcher.on("error", () => resolve(null));
    launcher.on("close", (c) => resolve(c));
  });
  if (code !== 0) throw new BenchError(`wireguard-go ${iface} on ${host}: exit ${code}: ${output.split("\n").filter((l) => !/^[┌│└]/.test(l)).join(" ").trim()}`);
  for (let i = 0; i < 100; i++) {
    if ((await readDevice(iface)) !== undefined) return;
    await sleep(50);
  }
  throw new BenchError(`wireguard-go ${iface} on ${host}: its UAPI socket did not answer within 5 s`);
}

async function keyPair(): Promise<{ privateKey: string; publicKey: string }> {
  const privateKey = (await runLocal(["wg", "genkey"])).trim();
  const publicKey = (await runLocal(["wg", "pubkey"], privateKey)).trim();
  return { privateKey, publicKey };
}

/** Runs a local, network-free command (`wg genkey`/`wg pubkey`) and returns its stdout. */
function runLocal(argv: readonly string[], input?: string): Promise<string> {
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    child.stdin.on("error", () => undefined); // `wg genkey` exits without reading stdin
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", (e) => reject(new BenchError(`${argv.join(" ")}: ${e.message}`, { cause: e })));
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new BenchError(`${argv.join(" ")}: exit ${code}: ${err.trim()}`))));
    child.stdin.end(input ?? "");
  });
}
