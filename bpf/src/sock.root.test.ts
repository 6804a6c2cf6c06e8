/**
 * Root: service load balancing in the kernel.
 *
 * The socket programs (weft_sock_*.c) attached to a test cgroup `<cgroup2>/wbt-lb-<pid>`: child
 * processes put themselves into it (cgroup.procs) and connect to a VIP whose backends are
 * listeners on 127.0.0.1 in this process. Round robin, weighted draws, least connections, the
 * rate limit and "no backend" (ECONNREFUSED, counted), UDP through sendmsg4/recvmsg4,
 * getpeername showing the VIP, sock_ops counting failures and latency, an unknown network
 * namespace left alone, a socket in another namespace taking that namespace's identity, and
 * attach replacing an earlier load's programs.
 *
 * The tc fallback (lb_nat.h in weft_from_workload / weft_to_workload) under BPF_PROG_RUN: a
 * flow to a VIP rewritten to its backend with valid checksums, the reply rewritten back, the
 * flow kept on its backend, a new SYN on a used tuple never following a stale entry, refused new
 * flows dropped and counted.
 *
 * The cgroup, the test network namespace and the children are removed, also on failure.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cgroupPrograms } from "./cgroup.js";
import { TcDatapath } from "./datapath.js";
import { LbMapName, lbDropsValueCodec, lbFlowKeyCodec, lbKeyCodec, lbNatValueCodec, lbRateKeyCodec, lbServiceCodec, lbStatsKeyCodec, lbStatsValueCodec, type LbService } from "./lb-layout.js";
import { DropReason, TcAction } from "./layout.js";
import { TypedMap } from "./map.js";
import { netnsCookie } from "./netns.js";
import { internetChecksum, ipv4Frame } from "./packet.js";
import { SockDatapath } from "./sock.js";
import { testRun } from "./testrun.js";

const isRoot = process.getuid?.() === 0;
const CGROUP2 = readFileSync("/proc/self/mounts", "utf8")
  .split("\n")
  .map((l) => l.split(" "))
  .find((f) => f[2] === "cgroup2")?.[1];
if (!isRoot) console.log("bpf - service load balancing root tests skipped: they need root");

const VIP = "100.96.0.10";
const SRC = 500;
const TCP = 6;
const UDP = 17;

/** The child: `[mode, host, port, count]` (mode udp, tcp or abort:<ms>) → one JSON line of results (backend answer or error code, peer). */
const CHILD = `
const net = require("node:net"), dgram = require("node:dgram");
const [mode, host, port, count] = process.argv.slice(1);
const one = () => new Promise((done) => {
  if (mode === "udp") {
    const s = dgram.createSocket("udp4");
    const t = setTimeout(() => { s.close(); done({ error: "TIMEOUT" }); }, 2000);
    s.on("message", (m, r) => { clearTimeout(t); s.close(); done({ backend: m.toString(), peer: r.address + ":" + r.port }); });
    s.on("error", (e) => { clearTimeout(t); s.close(); done({ error: e.code }); });
    s.send("x", Number(port), host, (e) => e && done({ error: e.code }));
    return;
  }
  const s = net.connect(Number(port), host);
  // "abort:<ms>": the client gives up and closes the socket after <ms> unless it got an answer by then.
  if (mode.startsWith("abort:")) setTimeout(() => { if (!s.remoteAddress) { s.destroy(); done({ error: "ABORTED" }); } }, Number(mode.slice(6)));
  let peer, data = "";
  s.on("connect", () => { peer = s.remoteAddress + ":" + s.remotePort; });
  s.on("data", (d) => (data += d));
  s.on("close", () => done(data ? { backend: data, peer } : { error: "CLOSED", peer }));
  s.on("error", (e) => done({ error: e.code, peer }));
});
(async () => { const out = []; for (let i = 0; i < Number(count); i++) out.push(await one()); console.log(JSON.stringify(out)); })();
`;

interface Result {
  backend?: string;
  peer?: string;
  error?: string;
}

describe.skipIf(!isRoot || !CGROUP2)("bpf - service load balancing", () => {
  const cgroupRel = `/wbt-lb-${process.pid}`;
  const cg = `${CGROUP2}${cgroupRel}`;
  const netns = `wbt-lb-${process.pid}`;
  const silentNetns = `wbt-lbs-${process.pid}`;
  let dp: SockDatapath;
  const servers: Server[] = [];
  const udps: UdpSocket[] = [];
  const ports: number[] = [];
  const children = new Set<number>();

  const listen = (name: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = createServer((c) => c.end(name));
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        servers.push(s);
        resolve((s.address() as { port: number }).port);
      });
    });
  const run = (argv: string[], o: { inCgroup?: boolean; netns?: string } = {}): Promise<Result[]> =>
    new Promise((resolve, reject) => {
      const base = [process.execPath, "-e", CHILD, ...argv];
      const inNs = o.netns ? ["ip", "netns", "exec", o.netns, ...base] : base;
      const full = o.inCgroup === false ? inNs : ["sh", "-c", 'echo $$ > "$0" && exec "$@"', `${cg}/cgroup.procs`, ...inNs];
      const child = spawn(full[0]!, full.slice(1));
      if (child.pid) children.add(child.pid);
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        if (child.pid) children.delete(child.pid);
        try {
          if (code !== 0) throw new Error(`child exited ${code}: ${err}`);
          resolve(JSON.parse(out) as Result[]);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
  const tally = (rs: Result[]) => rs.reduce<Record<string, number>>((m, r) => ({ ...m, [r.backend ?? `error:${r.error}`]: (m[r.backend ?? `error:${r.error}`] ?? 0) + 1 }), {});
  const service = (port: number, s: Partial<LbService> & { table: number[] }, proto = TCP) =>
    dp.services.set({ vip: VIP, port, proto, srcId: SRC }, { algo: "roundRobin", rate: 0, burst: 0, backends: ports.map((p) => ({ addr: "127.0.0.1", port: p })), ...s });

  beforeAll(async () => {
    mkdirSync(cg);
    dp = SockDatapath.load();
    ports.push(await listen("b0"), await listen("b1"), await listen("b2"));
    for (const [i, name] of ["u0", "u1"].entries()) {
      const u = createSocket("udp4");
      u.on("message", (_m, r) => u.send(name, r.port, r.address));
      await new Promise<void>((r) => u.bind(ports[i], "127.0.0.1", () => r()));
      udps.push(u);
    }
    dp.vips.set(VIP, {});
    dp.sources.set(netnsCookie(), { identity: SRC });
    dp.attach(cg);
  });

  afterEach(() => {
    for (const k of [...dp.services.keys()]) dp.services.delete(k);
  });

  afterAll(async () => {
    for (const pid of children) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    try {
      if (existsSync(cg)) SockDatapath.detachAll(cg);
    } finally {
      dp?.close();
      for (const s of servers) s.close();
      for (const u of udps) u.close();
      for (const ns of [netns, silentNetns]) if (existsSync(`/run/netns/${ns}`)) execFileSync("ip", ["netns", "del", ns]);
      for (let i = 0; i < 50 && existsSync(cg); i++) {
        try {
          rmdirSync(cg);
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  });

  it("bpf - round robin alternates over the table and getpeername shows the VIP, not the backend", async () => {
    service(80, { table: [0, 1] });
    const rs = await run(["tcp", VIP, "80", "10"]);
    expect(rs.map((r) => r.backend), "alternating").toEqual(["b0", "b1", "b0", "b1", "b0", "b1", "b0", "b1", "b0", "b1"]);
    expect(new Set(rs.map((r) => r.peer)), "peer address").toEqual(new Set([`${VIP}:80`]));
    const outside = await run(["tcp", VIP, "80", "1"], { inCgroup: false });
    expect(outside[0]?.backend, `outside the cgroup nothing is rewritten: ${JSON.stringify(outside)}`).toBeUndefined();
  });

  it("bpf - weighted draws follow the table's shares (3:1 over 800 connections within ±6 %)", async () => {
    service(81, { algo: "weighted", table: [0, 0, 0, 1] });
    const t = tally(await run(["tcp", VIP, "81", "800"]));
    expect(Math.abs((t["b0"] ?? 0) / 800 - 0.75), `b0 share: ${JSON.stringify(t)}`).toBeLessThanOrEqual(0.06);
    expect((t["b0"] ?? 0) + (t["b1"] ?? 0)).toBe(800);
  });

  it("bpf - least connections picks the backend with the fewest open connections (sock_ops closes them again)", async () => {
    service(82, { algo: "leastConnections", table: [0, 1] });
    const key = (p: number) => ({ vip: VIP, port: 82, proto: TCP, backend: "127.0.0.1", backendPort: p });
    // Pretend b0 holds 5 connections: every new one goes to b1, and closing returns active to 0.
    dp.stats.set(key(ports[0]!), { active: 5n, connects: 0n, failures: 0n, established: 0n, latencySumNs: 0n });
    const rs = await run(["tcp", VIP, "82", "6"]);
    expect(tally(rs), "all to the idle backend").toEqual({ b1: 6 });
    const st = dp.stats.get(key(ports[1]!));
    expect([st?.active, st?.connects, st?.established], "b1: 6 connects, 6 established, 0 active after close").toEqual([0n, 6n, 6n]);
    expect(st!.latencySumNs > 0n, "connect latency measured").toBe(true);
  });

  it("bpf - over the rate limit connect() fails with ECONNREFUSED (not EPERM), counted as rateLimited; no backend likewise as noBackend", async () => {
    service(83, { rate: 1, burst: 3, table: [0] });
    const t = tally(await run(["tcp", VIP, "83", "8"]));
    expect(t, "burst 3 then refused").toEqual({ b0: 3, "error:ECONNREFUSED": 5 });
    service(84, { backends: [], table: [] });
    expect(tally(await run(["tcp", VIP, "84", "2"]))).toEqual({ "error:ECONNREFUSED": 2 });
    const drops = dp.drops.get({ srcId: SRC, vip: VIP })?.drops ?? [];
    expect([drops[DropReason.rateLimited], drops[DropReason.noBackend]]).toEqual([5n, 2n]);
  });

  it("bpf - UDP: sendto the VIP reaches a backend, and the reply seems to come from the VIP (recvmsg4)", async () => {
    service(53, { table: [0, 1] }, UDP);
    const rs = await run(["udp", VIP, "53", "4"]);
    expect(rs.map((r) => r.backend)).toEqual(["u0", "u1", "u0", "u1"]);
    expect(new Set(rs.map((r) => r.peer))).toEqual(new Set([`${VIP}:53`]));
  });

  it("bpf - sock_ops counts a connect that never gets established as a failure", async () => {
    const closed = await listen("gone");
    servers.pop()!.close();
    dp.services.set({ vip: VIP, port: 85, proto: TCP, srcId: SRC }, { algo: "roundRobin", rate: 0, burst: 0, backends: [{ addr: "127.0.0.1", port: closed }], table: [0] });
    expect(tally(await run(["tcp", VIP, "85", "3"]))).toEqual({ "error:ECONNREFUSED": 3 });
    const st = dp.stats.get({ vip: VIP, port: 85, proto: TCP, backend: "127.0.0.1", backendPort: closed });
    expect([st?.connects, st?.failures, st?.established, st?.active]).toEqual([3n, 3n, 0n, 0n]);
  });

  it("bpf - sock_ops: a client closing its socket before the first SYN retransmission is no failure; after it, or timed out, it is", async () => {
    // A namespace of the test's own whose backend address drops every SYN on arrival (input hook): sent, never answered.
    execFileSync("ip", ["netns", "add", silentNetns]);
    execFileSync("ip", ["-n", silentNetns, "link", "set", "lo", "up"]);
    execFileSync("ip", ["-n", silentNetns, "addr", "add", "10.201.0.2/32", "dev", "lo"]);
    execFileSync("ip", ["netns", "exec", silentNetns, "iptables", "-A", "INPUT", "-d", "10.201.0.2", "-p", "tcp", "--dport", "80", "-j", "DROP"]);
    execFileSync("ip", ["netns", "exec", silentNetns, "sysctl", "-q", "-w", "net.ipv4.tcp_syn_retries=1"]); // ETIMEDOUT after ~3 s
    dp.sources.set(netnsCookie(`/run/netns/${silentNetns}`), { identity: 778 });
    dp.services.set({ vip: VIP, port: 87, proto: TCP, srcId: 778 }, { algo: "roundRobin", rate: 0, burst: 0, backends: [{ addr: "10.201.0.2", port: 80 }], table: [0] });
    const stats = () => {
      const st = dp.stats.get({ vip: VIP, port: 87, proto: TCP, backend: "10.201.0.2", backendPort: 80 });
      return { connects: st?.connects, failures: st?.failures, active: st?.active };
    };
    expect(tally(await run(["abort:200", VIP, "87", "3"], { netns: silentNetns })), "clients giving up after 0.2 s").toEqual({ "error:ABORTED": 3 });
    expect(stats(), "aborted within the first retransmission timeout: no failure").toEqual({ connects: 3n, failures: 0n, active: 0n });
    expect(tally(await run(["abort:1500", VIP, "87", "1"], { netns: silentNetns })), "a client giving up after 1.5 s").toEqual({ "error:ABORTED": 1 });
    expect(stats(), "aborted after the SYN went unanswered and was sent again: a failure").toEqual({ connects: 4n, failures: 1n, active: 0n });
    expect(tally(await run(["tcp", VIP, "87", "1"], { netns: silentNetns })), "a client waiting for the kernel").toEqual({ "error:ETIMEDOUT": 1 });
    expect(stats(), "timed out: a failure").toEqual({ connects: 5n, failures: 2n, active: 0n });
  });

  it("bpf - a socket in another network namespace carries that namespace's identity; an unknown namespace is left alone", async () => {
    execFileSync("ip", ["netns", "add", netns]);
    execFileSync("ip", ["-n", netns, "link", "set", "lo", "up"]);
    const cookie = netnsCookie(`/run/netns/${netns}`);
    expect(cookie, "a namespace's cookie differs from ours").not.toBe(netnsCookie());
    // Backends on the namespace's own loopback: only reachable when the namespace's identity selected them.
    dp.services.set({ vip: VIP, port: 86, proto: TCP, srcId: 777 }, { algo: "roundRobin", rate: 0, burst: 0, backends: [{ addr: "127.0.0.1", port: 9 }], table: [0] });
    const unknown = await run(["tcp", VIP, "86", "1"], { netns });
    expect(unknown[0]?.error, "unknown namespace: connect to the VIP untouched (no route there)").toMatch(/ENETUNREACH|EHOSTUNREACH|TIMEOUT/);
    dp.sources.set(cookie, { identity: 777 });
    const known = await run(["tcp", VIP, "86", "1"], { netns });
    expect(known[0]?.error, "known namespace: rewritten to 127.0.0.1:9 in that namespace (nothing listens)").toBe("ECONNREFUSED");
    dp.sources.delete(cookie);
  });

  it("bpf - attach replaces an earlier load's programs of the same names, keeping one of each", () => {
    const other = SockDatapath.load();
    try {
      other.attach(cg);
      const before = cgroupPrograms(cg, "connect4");
      for (const type of ["connect4", "sendmsg4", "recvmsg4", "getpeername4", "sock_ops"] as const) {
        expect(cgroupPrograms(cg, type).length, `${type}: one program attached`).toBe(1);
      }
      dp.attach(cg);
      const after = cgroupPrograms(cg, "connect4");
      expect(after.map((p) => p.name), "the kernel keeps 15 characters of the name").toEqual(["weft_sock_conne"]);
      expect(after[0]?.id, "this load's program replaced the other's").not.toBe(before[0]?.id);
    } finally {
      other.close();
    }
  });
});

describe.skipIf(!isRoot)("bpf - service load balancing, tc fallback under BPF_PROG_RUN", () => {
  let dp: TcDatapath;
  let services: TypedMap<ReturnType<typeof lbKeyCodec.decode>, LbService>;
  let nat: TypedMap<ReturnType<typeof lbFlowKeyCodec.decode>, { addr: string; port: number }>;
  let rnat: TypedMap<ReturnType<typeof lbFlowKeyCodec.decode>, { addr: string; port: number }>;
  let drops: TypedMap<ReturnType<typeof lbRateKeyCodec.decode>, { drops: bigint[] }>;
  const WEB = 100;

  beforeAll(() => {
    dp = TcDatapath.load();
    dp.ipcache.setMany([[{ addr: "10.0.0.0", prefixlen: 24 }, { identity: WEB }]]);
    new TypedMap(dp.map(LbMapName.vips), { size: 4, encode: (a: string) => Buffer.from(a.split(".").map(Number)), decode: () => "" }, { size: 4, encode: () => Buffer.alloc(4), decode: () => ({}) }).set(VIP, {});
    services = new TypedMap(dp.map(LbMapName.services), lbKeyCodec, lbServiceCodec);
    nat = new TypedMap(dp.map(LbMapName.nat), lbFlowKeyCodec, lbNatValueCodec);
    rnat = new TypedMap(dp.map(LbMapName.rnat), lbFlowKeyCodec, lbNatValueCodec);
    drops = new TypedMap(dp.map(LbMapName.drops), lbRateKeyCodec, lbDropsValueCodec);
  });
  afterAll(() => dp?.close());

  /** IPv4 header and L4 checksums of a frame are valid. */
  const checksumsOk = (frame: Buffer) => {
    const ip = frame.subarray(14, 34);
    const proto = ip[9]!;
    const l4 = frame.subarray(34);
    const pseudo = Buffer.alloc(12);
    ip.copy(pseudo, 0, 12, 20);
    pseudo[9] = proto;
    pseudo.writeUInt16BE(l4.length, 10);
    return internetChecksum(ip) === 0 && internetChecksum(Buffer.concat([pseudo, l4])) === 0;
  };
  const addr = (frame: Buffer, off: number) => [...frame.subarray(off, off + 4)].join(".");

  it("bpf - a flow to the VIP is sent to its backend with valid checksums, the reply comes back from the VIP, and the flow stays on its backend", () => {
    services.set({ vip: VIP, port: 80, proto: TCP, srcId: WEB }, { algo: "roundRobin", rate: 0, burst: 0, backends: [{ addr: "10.0.1.7", port: 8080 }, { addr: "10.0.1.8", port: 8080 }], table: [0, 1] });
    const syn = ipv4Frame({ src: "10.0.0.5", dst: VIP, proto: "tcp", sport: 40000, dport: 80, payload: Buffer.from("hello") });
    const out = testRun(dp.progFromWorkload, syn);
    expect(out.retval, "passes (routed)").toBe(TcAction.ok);
    const backend = addr(out.dataOut, 30);
    expect(["10.0.1.7", "10.0.1.8"], `rewritten destination ${backend}`).toContain(backend);
    expect(out.dataOut.readUInt16BE(36), "destination port").toBe(8080);
    expect(checksumsOk(out.dataOut), "IPv4 and TCP checksums after the rewrite").toBe(true);
    expect(nat.get({ saddr: "10.0.0.5", daddr: VIP, sport: 40000, dport: 80, proto: TCP })).toEqual({ addr: backend, port: 8080 });
    // Every later packet of the flow: the same backend, whatever round robin says now.
    const ack = ipv4Frame({ src: "10.0.0.5", dst: VIP, proto: "tcp", sport: 40000, dport: 80, tcpFlags: 0x10, payload: Buffer.from("more") });
    for (let i = 0; i < 3; i++) expect(addr(testRun(dp.progFromWorkload, ack).dataOut, 30), "same backend for the flow").toBe(backend);

    const reply = ipv4Frame({ src: backend, dst: "10.0.0.5", proto: "tcp", sport: 8080, dport: 40000, payload: Buffer.from("world") });
    const back = testRun(dp.progToWorkload, reply);
    expect(back.retval).toBe(TcAction.ok);
    expect([addr(back.dataOut, 26), back.dataOut.readUInt16BE(34)], "reply source: the VIP:port").toEqual([VIP, 80]);
    expect(checksumsOk(back.dataOut), "checksums after the reverse rewrite").toBe(true);
    expect(rnat.get({ saddr: backend, daddr: "10.0.0.5", sport: 8080, dport: 40000, proto: TCP })).toEqual({ addr: VIP, port: 80 });
    const other = ipv4Frame({ src: "10.0.0.5", dst: "10.0.1.9", proto: "tcp", sport: 40001, dport: 80 });
    expect(testRun(dp.progFromWorkload, other).dataOut.equals(other), "not a VIP: untouched").toBe(true);
  });

  it("bpf - least connections on the tc path: each new flow goes to the backend with the fewest active connections, wherever the scan starts", () => {
    const backends = ["10.0.1.7", "10.0.1.8", "10.0.1.9"].map((a) => ({ addr: a, port: 8080 }));
    services.set({ vip: VIP, port: 85, proto: TCP, srcId: WEB }, { algo: "leastConnections", rate: 0, burst: 0, backends, table: [0, 1, 2] });
    const stats = new TypedMap(dp.map(LbMapName.stats), lbStatsKeyCodec, lbStatsValueCodec);
    const active = (counts: number[]) =>
      counts.forEach((n, i) => stats.set({ vip: VIP, port: 85, proto: TCP, backend: backends[i]!.addr, backendPort: 8080 }, { active: BigInt(n), connects: 0n, failures: 0n, established: 0n, latencySumNs: 0n }));
    const picks = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => addr(testRun(dp.progFromWorkload, ipv4Frame({ src: "10.0.0.5", dst: VIP, proto: "tcp", sport: from + i, dport: 85, tcpFlags: 0x02 })).dataOut, 30));
    active([5, 0, 7]);
    expect(new Set(picks(41000, 12)), "all 12 new flows (random scan starts) to the idle backend").toEqual(new Set(["10.0.1.8"]));
    active([4, 9, 2]);
    expect(new Set(picks(41100, 12)), "the fewest moved to the third").toEqual(new Set(["10.0.1.9"]));
    active([1, 6, 6]);
    expect(new Set(picks(41200, 12)), "and to the first").toEqual(new Set(["10.0.1.7"]));
  });

  it("bpf - a client port used again never follows a stale entry: a SYN keeps its backend only while the source may use it, a SYN straight to a backend ends the old flow (both its entries)", () => {
    const [a, b] = ["10.0.1.7", "10.0.1.8"];
    const both = { algo: "roundRobin" as const, rate: 0, burst: 0, backends: [{ addr: a, port: 8080 }, { addr: b, port: 8080 }], table: [0, 1] };
    services.set({ vip: VIP, port: 83, proto: TCP, srcId: WEB }, both);
    const toVip = (tcpFlags: number) => ipv4Frame({ src: "10.0.0.5", dst: VIP, proto: "tcp", sport: 42000, dport: 83, tcpFlags });
    const first = addr(testRun(dp.progFromWorkload, toVip(0x02)).dataOut, 30);
    expect(addr(testRun(dp.progFromWorkload, toVip(0x10)).dataOut, 30), "the flow's ACKs stay on its backend").toBe(first);
    expect(addr(testRun(dp.progFromWorkload, toVip(0x02)).dataOut, 30), "a retransmitted SYN (its SYN-ACK lost) reaches the same backend").toBe(first);
    // The flow ended long ago (no close is seen on this path) and its backend is gone; the same port opens a new flow.
    const left = first === a ? b : a;
    services.set({ vip: VIP, port: 83, proto: TCP, srcId: WEB }, { ...both, backends: [{ addr: left, port: 8080 }], table: [0] });
    const second = addr(testRun(dp.progFromWorkload, toVip(0x02)).dataOut, 30);
    expect(second, "a SYN whose entry names a backend the source may no longer use is balanced again").toBe(left);
    expect(nat.get({ saddr: "10.0.0.5", daddr: VIP, sport: 42000, dport: 83, proto: TCP }), "the forward entry follows the new flow").toEqual({ addr: second, port: 8080 });
    expect(addr(testRun(dp.progFromWorkload, toVip(0x10)).dataOut, 30), "and its ACKs").toBe(second);
    expect(rnat.get({ saddr: second, daddr: "10.0.0.5", sport: 8080, dport: 42000, proto: TCP }), "tc path: its replies come from the VIP").toEqual({ addr: VIP, port: 83 });
    // Then a process in the cgroup connects from that port: connect4 already chose `second`, so its SYN goes straight there.
    const direct = ipv4Frame({ src: "10.0.0.5", dst: second, proto: "tcp", sport: 42000, dport: 8080 });
    expect(testRun(dp.progFromWorkload, direct).dataOut.equals(direct), "not a VIP: untouched").toBe(true);
    expect(rnat.get({ saddr: second, daddr: "10.0.0.5", sport: 8080, dport: 42000, proto: TCP }), "the stale reverse entry is gone").toBeUndefined();
    const synAck = ipv4Frame({ src: second, dst: "10.0.0.5", proto: "tcp", sport: 8080, dport: 42000, tcpFlags: 0x12 });
    const back = testRun(dp.progToWorkload, synAck);
    expect([addr(back.dataOut, 26), back.dataOut.readUInt16BE(34)], "its SYN-ACK comes from the backend the socket connected to, not the VIP").toEqual([second, 8080]);
    expect(nat.get({ saddr: "10.0.0.5", daddr: VIP, sport: 42000, dport: 83, proto: TCP }), "the port's flow to the VIP is over: its forward entry gone too").toBeUndefined();
    // Later a tc-path flow from that port to the VIP again: balanced afresh, with its way back.
    const third = addr(testRun(dp.progFromWorkload, toVip(0x02)).dataOut, 30);
    const synAck3 = testRun(dp.progToWorkload, ipv4Frame({ src: third, dst: "10.0.0.5", proto: "tcp", sport: 8080, dport: 42000, tcpFlags: 0x12 }));
    expect([addr(synAck3.dataOut, 26), synAck3.dataOut.readUInt16BE(34)], "a new flow to the VIP on that port: its SYN-ACK from the VIP").toEqual([VIP, 83]);
  });

  it("bpf - UDP: a datagram from a port straight to the backend its VIP flow went to ends that flow; the next one to the VIP is balanced again", () => {
    const backend = "10.0.1.7";
    services.set({ vip: VIP, port: 54, proto: UDP, srcId: WEB }, { algo: "roundRobin", rate: 0, burst: 0, backends: [{ addr: backend, port: 5353 }], table: [0] });
    const toVip = ipv4Frame({ src: "10.0.0.5", dst: VIP, proto: "udp", sport: 5001, dport: 54, payload: Buffer.from("q1") });
    const reply = ipv4Frame({ src: backend, dst: "10.0.0.5", proto: "udp", sport: 5353, dport: 5001, payload: Buffer.from("a") });
    const replySource = () => {
      const back = testRun(dp.progToWorkload, reply).dataOut;
      return `${addr(back, 26)}:${back.readUInt16BE(34)}`;
    };
    expect(addr(testRun(dp.progFromWorkload, toVip).dataOut, 30), "to the VIP: to its backend").toBe(backend);
    expect(replySource(), "the backend's reply comes from the VIP").toBe(`${VIP}:54`);
    // The client's port now talks to the backend's own address (e.g. a resolver asked directly).
    const direct = ipv4Frame({ src: "10.0.0.5", dst: backend, proto: "udp", sport: 5001, dport: 5353, payload: Buffer.from("q2") });
    expect(testRun(dp.progFromWorkload, direct).dataOut.equals(direct), "not a VIP: untouched").toBe(true);
    expect(rnat.get({ saddr: backend, daddr: "10.0.0.5", sport: 5353, dport: 5001, proto: UDP }), "the reverse entry is gone").toBeUndefined();
    expect(nat.get({ saddr: "10.0.0.5", daddr: VIP, sport: 5001, dport: 54, proto: UDP }), "and the forward entry").toBeUndefined();
    expect(replySource(), "the backend's reply now comes from the backend").toBe(`${backend}:5353`);
    expect(addr(testRun(dp.progFromWorkload, toVip).dataOut, 30), "to the VIP again").toBe(backend);
    expect(replySource(), "its reply from the VIP again").toBe(`${VIP}:54`);
    // A datagram from that port to another address leaves the VIP flow alone.
    testRun(dp.progFromWorkload, ipv4Frame({ src: "10.0.0.5", dst: "10.0.1.9", proto: "udp", sport: 5001, dport: 5353 }));
    expect(replySource(), "another address: the VIP flow stays").toBe(`${VIP}:54`);
  });

  it("bpf - UDP to the VIP: rewritten with a valid checksum", () => {
    services.set({ vip: VIP, port: 53, proto: UDP, srcId: WEB }, { algo: "roundRobin", rate: 0, burst: 0, backends: [{ addr: "10.0.1.7", port: 5353 }], table: [0] });
    const q = ipv4Frame({ src: "10.0.0.5", dst: VIP, proto: "udp", sport: 5000, dport: 53, payload: Buffer.from("query") });
    const out = testRun(dp.progFromWorkload, q);
    expect([addr(out.dataOut, 30), out.dataOut.readUInt16BE(36), checksumsOk(out.dataOut)]).toEqual(["10.0.1.7", 5353, true]);
  });

  it("bpf - a new flow over the rate limit or with no backend is dropped and counted", () => {
    services.set({ vip: VIP, port: 81, proto: TCP, srcId: WEB }, { algo: "roundRobin", rate: 1, burst: 1, backends: [{ addr: "10.0.1.7", port: 8080 }], table: [0] });
    const flow = (sport: number) => ipv4Frame({ src: "10.0.0.5", dst: VIP, proto: "tcp", sport, dport: 81 });
    expect(testRun(dp.progFromWorkload, flow(41000)).retval, "within the burst").toBe(TcAction.ok);
    expect(testRun(dp.progFromWorkload, flow(41001)).retval, "over it").toBe(TcAction.shot);
    services.set({ vip: VIP, port: 82, proto: TCP, srcId: WEB }, { algo: "roundRobin", rate: 0, burst: 0, backends: [], table: [] });
    expect(testRun(dp.progFromWorkload, ipv4Frame({ src: "10.0.0.5", dst: VIP, proto: "tcp", sport: 41002, dport: 82 })).retval, "no backend").toBe(TcAction.shot);
    const counted = drops.get({ srcId: WEB, vip: VIP })?.drops ?? [];
    expect([counted[DropReason.rateLimited], counted[DropReason.noBackend]]).toEqual([1n, 1n]);
  });
});
