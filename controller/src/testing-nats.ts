/**
 * Test support (not part of the public surface): real nats-server processes trusting a
 * controller's authority over TLS — one, or a JetStream cluster of several on loopback — that a
 * test can kill, freeze and start again, and a TCP proxy that can cut a connection without closing
 * it (a partition). Everything made is removed by `stop()`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { natsServerConfigFragment } from "./nats-config.js";
import { findNatsServer, loadOrCreateAuthority } from "./nats/index.js";
import { eventually } from "./testing.js";
import { ApiTls, TLS_DIR } from "./tls/index.js";

/** `n` distinct free loopback ports: each held until all are drawn, so none is drawn twice. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          srv.once("error", reject);
          srv.listen(0, "127.0.0.1", () => {
            const addr = srv.address();
            if (typeof addr === "object" && addr) resolve(addr.port);
            else reject(new Error("no port"));
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** A bare nats-server (no authority, no TLS) started with `args`, listening on a port of its choosing. */
export interface BareNats {
  child: ChildProcess;
  port: number;
  /** SIGTERM, and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts `nats-server -a 127.0.0.1 -p -1 <args>` and resolves with its client port once it listens. */
export async function startBareNats(args: readonly string[]): Promise<BareNats> {
  const child = spawn(await findNatsServer(), ["-a", "127.0.0.1", "-p", "-1", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not listen within 20 s: ${log.slice(-500)}`)), 20_000);
    child.stderr?.on("data", (d: Buffer) => {
      log += d.toString();
      const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited ${code}: ${log.slice(-500)}`));
    });
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  };
  return { child, port, stop };
}

export interface NatsServers {
  /** tls:// client URLs, one per server. */
  urls: string[];
  caPem: string;
  /** Kills server i (SIGKILL) and waits for it to exit. */
  kill(i: number): Promise<void>;
  /** Starts server i again (same ports and data) and waits until it answers. */
  start(i: number): Promise<void>;
  /** SIGSTOP / SIGCONT server i. */
  freeze(i: number): void;
  thaw(i: number): void;
  running(i: number): boolean;
  /** The index of the server its running peers name as the JetStream meta leader (monitoring /jsz), if they agree on one. */
  metaLeader(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/**
 * Starts `count` nats-servers for the controller state in `stateDir` (its authority and TLS CA are
 * made there first), under `dir`; with count > 1 they form one JetStream cluster.
 */
export async function startNatsServers(dir: string, stateDir: string, count: number): Promise<NatsServers> {
  await loadOrCreateAuthority(join(stateDir, "authority"));
  const tls = await ApiTls.open({ dir: join(stateDir, TLS_DIR), sans: ["127.0.0.1", "localhost"], log: pino({ level: "silent" }) });
  await writeFile(join(dir, "nats.crt"), tls.serverOptions().cert);
  await writeFile(join(dir, "nats.key"), tls.serverOptions().key, { mode: 0o600 });
  const fragment = await natsServerConfigFragment(stateDir);
  const binary = await findNatsServer();
  // A port drawn free can be taken by another test before the server binds it: then the servers
  // start again on other ports (a few times).
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCluster({ dir, count, binary, fragment, caPem: tls.caPem, cert: join(dir, "nats.crt"), key: join(dir, "nats.key") });
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt === 3) throw err;
    }
  }
}

/** A nats-server exited at start because one of its ports was taken. */
class PortTakenError extends Error {}

async function startCluster(o: { dir: string; count: number; binary: string; fragment: string; caPem: string; cert: string; key: string }): Promise<NatsServers> {
  const { dir, count, binary, fragment } = o;
  const drawn = await freePorts(3 * count);
  const ports = Array.from({ length: count }, (_, i) => ({ client: drawn[3 * i]!, cluster: drawn[3 * i + 1]!, http: drawn[3 * i + 2]! }));
  const procs: (ChildProcess | undefined)[] = [];
  const urls = ports.map((p) => `tls://127.0.0.1:${p.client}`);
  const confs: string[] = [];
  for (let i = 0; i < count; i++) {
    const sdir = join(dir, `n${i + 1}`);
    await mkdir(sdir, { recursive: true });
    const cluster =
      count > 1
        ? `cluster { name: weft, listen: "127.0.0.1:${ports[i]!.cluster}", routes: [${ports.map((p) => `"nats-route://127.0.0.1:${p.cluster}"`).join(", ")}] }\n`
        : "";
    const conf = join(sdir, "nats.conf");
    await writeFile(
      conf,
      `server_name: n${i + 1}\nhost: 127.0.0.1\nport: ${ports[i]!.client}\nhttp: "127.0.0.1:${ports[i]!.http}"\njetstream { store_dir: "${join(sdir, "js")}", max_file_store: 4GB }\n` +
        `tls { cert_file: "${o.cert}", key_file: "${o.key}" }\n${cluster}${fragment}`,
    );
    confs.push(conf);
  }
  const answers = async (i: number) => {
    const got = await connect({ servers: urls[i]!, tls: { ca: o.caPem }, timeout: 500, maxReconnectAttempts: 0 }).catch((err: unknown) => err);
    // Anonymous connections are refused: an authorization error means the server is up.
    return got instanceof Error && /authoriz/i.test(got.message) ? true : undefined;
  };
  const start = async (i: number) => {
    const child = spawn(binary, ["-c", confs[i]!], { stdio: ["ignore", "ignore", "pipe"] });
    procs[i] = child;
    let log = "";
    child.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-2000)));
    const exited = new Promise<"exited">((r) => child.once("exit", () => r("exited")));
    const up = eventually(() => answers(i), 15_000, 100);
    if ((await Promise.race([up, exited])) === true) return;
    procs[i] = undefined;
    const why = `nats-server n${i + 1} did not come up${child.exitCode !== null || child.signalCode !== null ? ` (it exited: ${log.trim().split("\n").slice(-3).join(" | ")})` : " within 15 s"}`;
    throw /address already in use/i.test(log) ? new PortTakenError(why) : new Error(why);
  };
  const kill = async (i: number) => {
    const p = procs[i];
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGCONT");
    p.kill("SIGKILL");
    await exited;
    procs[i] = undefined;
  };
  try {
    await Promise.all(confs.map((_, i) => start(i)));
  } catch (err) {
    await Promise.all(confs.map((_, i) => kill(i)));
    throw err;
  }
  return {
    urls,
    caPem: o.caPem,
    kill,
    start,
    freeze: (i) => procs[i]?.kill("SIGSTOP"),
    thaw: (i) => procs[i]?.kill("SIGCONT"),
    running: (i) => procs[i] !== undefined,
    metaLeader: async () => {
      const named = new Set<string>();
      for (let i = 0; i < count; i++) {
        if (!procs[i]) continue;
        const jsz = (await fetch(`http://127.0.0.1:${ports[i]!.http}/jsz`).then((r) => r.json()).catch(() => undefined)) as { meta_cluster?: { leader?: string } } | undefined;
        named.add(jsz?.meta_cluster?.leader ?? "");
      }
      const [leader] = named;
      if (named.size !== 1 || !leader) return undefined;
      const i = Number(leader.slice(1)) - 1;
      return procs[i] ? i : undefined;
    },
    stop: async () => {
      await Promise.all(confs.map((_, i) => kill(i)));
    },
  };
}

export interface TcpProxy {
  port: number;
  /** Stops forwarding in both directions, connections left open (a partition, not a close). */
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy to 127.0.0.1:`targetPort` that can be cut. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let cut = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
      s.on("close", () => sockets.delete(s));
    }
    client.on("data", (b) => void (cut ? undefined : upstream.write(b)));
    upstream.on("data", (b) => void (cut ? undefined : client.write(b)));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    port,
    cut: () => {
      cut = true;
    },
    heal: () => {
      cut = false;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
