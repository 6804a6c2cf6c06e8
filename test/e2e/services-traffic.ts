/**
 * Traffic for the services end-to-end tests, as real processes in the lab's namespaces:
 *
 * - a backend server that answers every TCP connection with an HTTP 200 whose body is its own
 *   name (so a client knows which backend it reached, and an HTTP health check passes) and every
 *   UDP datagram with its name;
 * - a client that resolves a name through the workload's resolv.conf (the agent's DNS) and opens
 *   connections (count, concurrency), recording for each the backend that answered, the peer
 *   address the socket reports (getpeername: the VIP) or the error code; a loop mode that starts
 *   one attempt every interval until SIGTERM and returns the timeline; a UDP mode (sendto the VIP,
 *   check the reply's source);
 * - a holder that keeps connections open on command (least connections).
 */
import { once } from "node:events";
import { labExec, spawnInHost, type LabOptions } from "@weft/lab";
import { waitUntil } from "./mesh.js";
import { spawnReady, type Spawned } from "./traffic.js";

/** Backend: `<name> <tcp ports…> -- <udp ports…>`. */
const SERVER_JS = `
const net = require("node:net"), dgram = require("node:dgram");
const [name, ...rest] = process.argv.slice(1);
const sep = rest.indexOf("--");
const tcp = (sep < 0 ? rest : rest.slice(0, sep)).map(Number), udp = sep < 0 ? [] : rest.slice(sep + 1).map(Number);
let ready = 0; const total = tcp.length + udp.length;
const up = () => { if (++ready === total) process.stdout.write("ready\\n"); };
const body = Buffer.from(name);
const head = Buffer.from("HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: " + body.length + "\\r\\n\\r\\n");
for (const port of tcp) {
  const srv = net.createServer((s) => { s.on("error", () => {}); s.write(Buffer.concat([head, body])); s.on("end", () => s.end()); s.resume(); });
  srv.listen(port, "0.0.0.0", up);
}
for (const port of udp) {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (m, r) => sock.send(body, r.port, r.address));
  sock.bind(port, "0.0.0.0", up);
}
process.on("SIGTERM", () => process.exit(0));
`;

export function startBackend(opts: LabOptions, node: string, name: string, tcp: number[], udp: number[] = []): Promise<Spawned> {
  return spawnReady(opts, node, [process.execPath, "-e", SERVER_JS, name, ...tcp.map(String), "--", ...udp.map(String)], "ready");
}

/** Client: JSON config as the only argument; prints one JSON line. */
const CLIENT_JS = `
const net = require("node:net"), dns = require("node:dns"), dgram = require("node:dgram");
const cfg = JSON.parse(process.argv[1]);
const resolve = (h) => /^\\d+\\.\\d+\\.\\d+\\.\\d+$/.test(h) ? Promise.resolve(h) : new Promise((ok, no) => dns.lookup(h, { family: 4 }, (e, a) => e ? no(e) : ok(a)));
const tcpOnce = (addr) => new Promise((done) => {
  const t0 = Date.now(); let peer, data = "", settled = false;
  const s = net.connect({ host: addr, port: cfg.port });
  const finish = (r) => { if (settled) return; settled = true; clearTimeout(timer); s.destroy(); done({ t: t0, ms: Date.now() - t0, peer, ...r }); };
  const timer = setTimeout(() => finish({ error: "TIMEOUT", port: s.localPort, connected: peer !== undefined }), cfg.timeoutMs || 3000);
  s.on("connect", () => { peer = s.remoteAddress + ":" + s.remotePort; });
  s.on("data", (d) => { data += d; const i = data.indexOf("\\r\\n\\r\\n"); if (i >= 0 && data.length > i + 4) finish({ backend: data.slice(i + 4) }); });
  s.on("error", (e) => finish({ error: e.code || e.message }));
  s.on("close", () => finish({ error: "CLOSED" }));
});
const udpOnce = (addr) => new Promise((done) => {
  const t0 = Date.now(); const s = dgram.createSocket("udp4"); let settled = false;
  const finish = (r) => { if (settled) return; settled = true; clearTimeout(timer); s.close(); done({ t: t0, ms: Date.now() - t0, ...r }); };
  const timer = setTimeout(() => finish({ error: "TIMEOUT" }), cfg.timeoutMs || 2000);
  s.on("message", (m, r) => finish({ backend: m.toString(), peer: r.address + ":" + r.port }));
  s.on("error", (e) => finish({ error: e.code || e.message }));
  s.send(Buffer.from("hello"), cfg.port, addr, (e) => e && finish({ error: e.code || e.message }));
});
(async () => {
  let addr;
  try { addr = await resolve(cfg.host); } catch (e) { process.stdout.write(JSON.stringify({ resolveError: e.code || e.message }) + "\\n"); return; }
  const once = cfg.udp ? udpOnce : tcpOnce;
  const results = [];
  if (cfg.loopMs) {
    let stop = false; const pending = new Set();
    process.on("SIGTERM", async () => { stop = true; await Promise.all(pending); process.stdout.write(JSON.stringify({ resolved: addr, results }) + "\\n"); process.exit(0); });
    process.stdout.write("ready\\n");
    while (!stop) { const p = once(addr).then((r) => { results.push(r); pending.delete(p); }); pending.add(p); await new Promise((r) => setTimeout(r, cfg.loopMs)); }
    return;
  }
  let next = 0;
  const worker = async () => { while (next < cfg.count) { next++; results.push(await once(addr)); } };
  await Promise.all(Array.from({ length: Math.min(cfg.concurrency || 1, cfg.count) }, worker));
  process.stdout.write(JSON.stringify({ resolved: addr, results }) + "\\n");
})();
`;

export interface Attempt {
  /** Start time (ms since epoch, the lab's clock is this machine's). */
  t: number;
  ms: number;
  /** The backend's name when one answered. */
  backend?: string;
  /** getpeername (TCP) or the reply's source (UDP), `ip:port`. */
  peer?: string;
  error?: string;
  /** TCP, on a timeout: the socket's local port (to find it in a capture) and whether it had connected. */
  port?: number;
  connected?: boolean;
}

export interface ClientResult {
  resolved?: string;
  resolveError?: string;
  results: Attempt[];
}

export interface ClientOptions {
  host: string;
  port: number;
  count?: number;
  concurrency?: number;
  udp?: boolean;
  timeoutMs?: number;
  /** Run outside the host's cgroup (no socket programs: the tc fallback). */
  outsideCgroup?: boolean;
}

/** Runs the client in `node` to completion. */
export async function runClient(opts: LabOptions, node: string, o: ClientOptions): Promise<ClientResult> {
  const cfg = { host: o.host, port: o.port, count: o.count ?? 1, concurrency: o.concurrency ?? 1, udp: o.udp ?? false, timeoutMs: o.timeoutMs ?? 3000 };
  const res = await labExec(opts, node, [process.execPath, "-e", CLIENT_JS, JSON.stringify(cfg)], { timeoutMs: 120_000, ...(o.outsideCgroup ? { cgroup: false } : {}) });
  const line = res.stdout.trim().split("\n").pop() ?? "";
  try {
    const parsed = JSON.parse(line) as ClientResult;
    return { ...parsed, results: parsed.results ?? [] };
  } catch {
    throw new Error(`client on ${node}: no result (exit ${res.exitCode}): ${res.stderr.slice(0, 400)}`);
  }
}

/** Starts the client in loop mode (one attempt every `loopMs`) until `finish`. */
export async function startLoopClient(opts: LabOptions, node: string, o: ClientOptions & { loopMs: number }): Promise<{ finish(): Promise<ClientResult> }> {
  const cfg = { host: o.host, port: o.port, loopMs: o.loopMs, timeoutMs: o.timeoutMs ?? 1000 };
  const p = await spawnReady(opts, node, [process.execPath, "-e", CLIENT_JS, JSON.stringify(cfg)], "ready", 10_000);
  return {
    async finish() {
      await p.stop();
      const last = p.stdout().trim().split("\n").pop() ?? "";
      return JSON.parse(last) as ClientResult;
    },
  };
}

/** Holder: reads commands on stdin: `open <n>` (n connections, one after the other, kept open) and `close <backend>`; answers one JSON line each. */
const HOLDER_JS = `
const net = require("node:net"), readline = require("node:readline");
const [host, port] = process.argv.slice(1);
const held = [];
const open = () => new Promise((done) => {
  const s = net.connect({ host, port: Number(port) }); let data = "";
  s.on("data", (d) => { data += d; const i = data.indexOf("\\r\\n\\r\\n"); if (i >= 0 && data.length > i + 4) { held.push({ s, backend: data.slice(i + 4) }); done(data.slice(i + 4)); } });
  s.on("error", (e) => done("error:" + (e.code || e.message)));
});
readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  const [cmd, arg] = line.trim().split(" ");
  if (cmd === "open") { const got = []; for (let i = 0; i < Number(arg); i++) got.push(await open()); process.stdout.write(JSON.stringify(got) + "\\n"); }
  if (cmd === "close") { let n = 0; for (const h of held.filter((x) => x.backend === arg)) { h.s.destroy(); held.splice(held.indexOf(h), 1); n++; } setTimeout(() => process.stdout.write(JSON.stringify(n) + "\\n"), 300); }
});
process.stdout.write("ready\\n");
process.on("SIGTERM", () => process.exit(0));
`;

export interface Holder {
  /** Opens `n` connections one after the other and keeps them; returns the backend of each. */
  open(n: number): Promise<string[]>;
  /** Closes the held connections to `backend`; returns how many. */
  close(backend: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startHolder(opts: LabOptions, node: string, host: string, port: number): Promise<Holder> {
  const child = spawnInHost(opts, node, [process.execPath, "-e", HOLDER_JS, host, String(port)], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  };
  await waitUntil(`holder on ${node}`, 10_000, async () => out.includes("ready"), 20).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  let seen = out.split("\n").length;
  const ask = async (line: string): Promise<unknown> => {
    child.stdin?.write(`${line}\n`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const lines = out.split("\n");
      if (lines.length > seen && lines[lines.length - 1] === "") {
        const answer = lines[lines.length - 2] ?? "";
        seen = lines.length;
        return JSON.parse(answer);
      }
      if (Date.now() > deadline) throw new Error(`holder on ${node}: no answer to ${line}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    open: async (n) => (await ask(`open ${n}`)) as string[],
    close: async (backend) => (await ask(`close ${backend}`)) as number,
    stop,
  };
}

/** Attempts per backend name (errors under `error:<code>`). */
export function tally(results: readonly Attempt[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    const k = r.backend ?? `error:${r.error ?? "?"}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
