/**
 * Root: loads the datapath objects (bpf/dist/weft_*.o) into the kernel, fills their shared maps through the typed codecs and runs
 * weft_to_workload on crafted frames with BPF_PROG_RUN (verdicts, counters, unknown sources), pins a
 * map on a private bpffs and reopens it, and attaches to tc on a veth. Needs CAP_BPF/CAP_NET_ADMIN.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TcDatapath } from "./datapath.js";
import { BpfError } from "./errors.js";
import { DropReason, ReservedIdentity, totalDrops, zeroCounters, TcAction, countersKeyCodec, countersValueCodec, ipcacheKeyCodec, ipcacheValueCodec, type CountersValue, MapName } from "./layout.js";
import { BpfMap, TypedMap, UpdateFlag } from "./map.js";
import { ipv4Frame, type PacketSpec } from "./packet.js";
import { tcAttach, tcDestroyHook, tcDetach } from "./tc.js";
import { testRun } from "./testrun.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log("bpf - datapath root tests skipped: they need root (run `npx vitest run --project root` as root)");

const TCP = 6;
const UDP = 17;
const WEB = 100; // 10.0.0.0/24
const DB = 200; // 10.0.1.0/24
const CACHE = 300; // 10.0.2.0/24, no default deny, no policy
const VETH = "wbt-dp-t0";
const VETH_PEER = "wbt-dp-t1";
const NS = "wbt-dp-ns";
const NS_VETH = "wbt-dp-n0"; // root end; its peer lives in NS
const NS_ADDR = "198.18.0.1"; // in NS
const HOST_ADDR = "198.18.0.2"; // root end
const PINGER = 500;
const PINGED = 600;

describe.skipIf(!isRoot)("bpf - tc datapath in the kernel", () => {
  let dp: TcDatapath;
  let bpffs: string | undefined;
  let mounted = false;
  const pins: string[] = [];

  const run = (spec: PacketSpec) => testRun(dp.progToWorkload, ipv4Frame(spec));
  const counters = (srcId: number, dstId: number): CountersValue => (dp.counters.get({ srcId, dstId }) ?? zeroCounters());

  beforeAll(() => {
    dp = TcDatapath.load();
    dp.ipcache.setMany([
      [{ addr: "10.0.0.0", prefixlen: 24 }, { identity: WEB }],
      [{ addr: "10.0.1.0", prefixlen: 24 }, { identity: DB }],
      [{ addr: "10.0.2.0", prefixlen: 24 }, { identity: CACHE }],
    ]);
    dp.policy.setMany([
      [{ srcId: WEB, dstId: DB, proto: TCP, port: 5432, portBits: 16 }, { verdict: "allow" }],
      [{ srcId: WEB, dstId: DB, proto: UDP, port: 0, portBits: 0 }, { verdict: "allow" }],
      // deny wins over the allow of every UDP port above
      [{ srcId: WEB, dstId: DB, proto: UDP, port: 53, portBits: 16 }, { verdict: "deny" }],
    ]);
    dp.policyDefault.set(DB, { defaultDeny: true });
  });

  afterAll(() => {
    for (const argv of [["link", "del", VETH], ["link", "del", NS_VETH], ["netns", "del", NS]]) {
      try {
        execFileSync("ip", argv, { stdio: "ignore" });
      } catch {
        /* not created or already gone */
      }
    }
    dp?.close();
    for (const p of pins) rmSync(p, { force: true });
    if (bpffs) {
      if (mounted) execFileSync("umount", [bpffs]);
      rmSync(bpffs, { recursive: true, force: true });
    }
  });

  it("bpf - an allowed TCP flow passes with TC_ACT_OK and the frame is unchanged", () => {
    const frame = ipv4Frame({ src: "10.0.0.5", dst: "10.0.1.7", proto: "tcp", sport: 40000, dport: 5432 });
    const r = testRun(dp.progToWorkload, frame);
    expect(r.retval, `retval: got ${r.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
    expect(r.dataOut.equals(frame), "data_out equals data_in").toBe(true);
    console.log(`bpf - BPF_PROG_RUN single run: ${r.durationNs} ns (includes first-run costs)`);
  });

  it("bpf - another port to a default-deny identity is dropped with TC_ACT_SHOT", () => {
    const r = run({ src: "10.0.0.5", dst: "10.0.1.7", proto: "tcp", sport: 40000, dport: 22 });
    expect(r.retval, `retval: got ${r.retval}, want TC_ACT_SHOT`).toBe(TcAction.shot);
  });

  it("bpf - an explicit deny wins over an any-port allow; other UDP ports pass", () => {
    const denied = run({ src: "10.0.0.5", dst: "10.0.1.7", proto: "udp", sport: 5000, dport: 53 });
    expect(denied.retval, `udp/53: got ${denied.retval}, want TC_ACT_SHOT`).toBe(TcAction.shot);
    const allowed = run({ src: "10.0.0.5", dst: "10.0.1.7", proto: "udp", sport: 5000, dport: 9999 });
    expect(allowed.retval, `udp/9999: got ${allowed.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
  });

  it("bpf - a pair that no policy talks about is allowed", () => {
    const r = run({ src: "10.0.1.9", dst: "10.0.2.1", proto: "tcp", sport: 1, dport: 6379 });
    expect(r.retval, `db -> cache: got ${r.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
  });

  it("bpf - counters per identity pair hold packets, bytes and drops", () => {
    dp.counters.delete({ srcId: WEB, dstId: CACHE });
    const ok = ipv4Frame({ src: "10.0.0.1", dst: "10.0.2.2", proto: "tcp", sport: 1, dport: 80, payload: Buffer.alloc(100) });
    dp.policy.set({ srcId: WEB, dstId: CACHE, proto: TCP, port: 81, portBits: 16 }, { verdict: "deny" });
    const bad = ipv4Frame({ src: "10.0.0.1", dst: "10.0.2.2", proto: "tcp", sport: 1, dport: 81 });
    for (let i = 0; i < 3; i++) expect(testRun(dp.progToWorkload, ok).retval).toBe(TcAction.ok);
    expect(testRun(dp.progToWorkload, bad).retval).toBe(TcAction.shot);
    const got = counters(WEB, CACHE);
    const want = zeroCounters();
    want.packets = 4n;
    want.bytes = BigInt(3 * ok.length + bad.length);
    want.drops[DropReason.policyDeny] = 1n;
    expect(got, `web -> cache counters: got ${JSON.stringify(got, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`).toEqual(want);
    expect([...dp.counters.keys()]).toContainEqual({ srcId: WEB, dstId: CACHE });
  });

  it("bpf - a source outside the ipcache is the reserved world identity, and a world rule applies", () => {
    const world = ReservedIdentity.world;
    dp.counters.delete({ srcId: world, dstId: DB });
    const before = run({ src: "192.0.2.1", dst: "10.0.1.7", proto: "tcp", sport: 1, dport: 5432 });
    expect(before.retval, `world -> db (default deny): got ${before.retval}, want TC_ACT_SHOT`).toBe(TcAction.shot);
    dp.policy.set({ srcId: world, dstId: DB, proto: TCP, port: 5432, portBits: 16 }, { verdict: "allow" });
    const after = run({ src: "192.0.2.1", dst: "10.0.1.7", proto: "tcp", sport: 1, dport: 5432 });
    expect(after.retval, `world -> db after allow: got ${after.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
    const c = counters(world, DB);
    expect(c.packets).toBe(2n);
    expect(c.drops[DropReason.defaultDeny], "drops[defaultDeny]").toBe(1n);
    expect(dp.policy.delete({ srcId: world, dstId: DB, proto: TCP, port: 5432, portBits: 16 })).toBe(true);
    expect(dp.policy.delete({ srcId: world, dstId: DB, proto: TCP, port: 5432, portBits: 16 })).toBe(false);
  });

  it("bpf - longest prefix wins in the ipcache", () => {
    dp.ipcache.set({ addr: "10.0.1.128", prefixlen: 25 }, { identity: CACHE });
    try {
      // 10.0.1.200 is now CACHE, which has no policy and no default deny: ssh passes
      const r = run({ src: "10.0.0.5", dst: "10.0.1.200", proto: "tcp", sport: 1, dport: 22 });
      expect(r.retval, `web -> 10.0.1.200:22: got ${r.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
    } finally {
      dp.ipcache.delete({ addr: "10.0.1.128", prefixlen: 25 });
    }
  });

  it("bpf - batch update and delete, then iteration sees exactly what is left", () => {
    const entries = Array.from({ length: 1000 }, (_, i) => [{ srcId: 5000 + i, dstId: 9, proto: TCP, port: 443, portBits: 16 }, { verdict: "allow" as const }] as const);
    let t0 = performance.now();
    dp.policy.setMany(entries);
    const batchUs = ((performance.now() - t0) * 1000) / entries.length;
    dp.policy.deleteMany(entries.map(([k]) => k));
    t0 = performance.now();
    for (const [k, v] of entries) dp.policy.set(k, v);
    const singleUs = ((performance.now() - t0) * 1000) / entries.length;
    dp.policy.deleteMany(entries.slice(1).map(([k]) => k));
    const left = [...dp.policy.entries()].filter(([k]) => k.dstId === 9);
    expect(left).toEqual([[{ srcId: 5000, dstId: 9, proto: TCP, port: 443, portBits: 16 }, { verdict: "allow" }]]);
    dp.policy.delete({ srcId: 5000, dstId: 9, proto: TCP, port: 443, portBits: 16 });
    console.log(`bpf - policy map update: ${singleUs.toFixed(2)} µs each one by one, ${batchUs.toFixed(2)} µs each in a batch of ${entries.length}`);
  });

  it("bpf - tunnels, tunnel peers and config: typed batch set, iteration for a startup diff, batch delete", () => {
    dp.tunnels.setMany([
      [{ addr: "10.20.1.0", prefixlen: 24 }, { remote: "192.168.7.1" }],
      [{ addr: "10.20.2.0", prefixlen: 24 }, { remote: "192.168.7.2" }],
    ]);
    dp.tunnelPeers.setMany([
      ["192.168.7.1", {}],
      ["192.168.7.2", {}],
    ]);
    const byAddr = <T>(xs: T[], f: (x: T) => string) => xs.sort((p, q) => f(p).localeCompare(f(q)));
    expect(byAddr([...dp.tunnels.entries()], ([k]) => k.addr)).toEqual([
      [{ addr: "10.20.1.0", prefixlen: 24 }, { remote: "192.168.7.1" }],
      [{ addr: "10.20.2.0", prefixlen: 24 }, { remote: "192.168.7.2" }],
    ]);
    expect([...dp.tunnelPeers.keys()].sort()).toEqual(["192.168.7.1", "192.168.7.2"]);
    dp.tunnels.deleteMany([{ addr: "10.20.1.0", prefixlen: 24 }]);
    dp.tunnelPeers.deleteMany(["192.168.7.1", "192.168.7.2"]);
    expect([...dp.tunnels.keys()]).toEqual([{ addr: "10.20.2.0", prefixlen: 24 }]);
    expect([...dp.tunnelPeers.entries()]).toEqual([]);
    dp.tunnels.delete({ addr: "10.20.2.0", prefixlen: 24 });
    expect(dp.getConfig(), "config starts zeroed").toEqual({ vxlanIfindex: 0 });
    dp.setConfig({ vxlanIfindex: 9 });
    expect([...dp.config.entries()]).toEqual([[0, { vxlanIfindex: 9 }]]);
    dp.setConfig({ vxlanIfindex: 0 });
    const pairs = [...dp.counters.entries()];
    expect(pairs.length, "counters entries").toBeGreaterThan(0);
    expect(dp.counters.raw.perCpu, "one value for all CPUs").toBe(false);
  });

  it("bpf - NOEXIST on an existing key is a typed EEXIST error", () => {
    const k = { addr: "10.0.0.0", prefixlen: 24 };
    let err: unknown;
    try {
      dp.ipcache.set(k, { identity: 1 }, UpdateFlag.noExist);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BpfError);
    expect((err as BpfError).code, `got ${String(err)}`).toBe("EEXIST");
    expect(dp.ipcache.get(k)).toEqual({ identity: WEB });
  });

  it("bpf - program cost with BPF_PROG_RUN repeat", () => {
    const r = testRun(dp.progToWorkload, ipv4Frame({ src: "10.0.0.5", dst: "10.0.1.7", proto: "tcp", sport: 40000, dport: 5432 }), { repeat: 100_000 });
    expect(r.retval).toBe(TcAction.ok);
    expect(r.durationNs).toBeGreaterThan(0);
    console.log(`bpf - weft_to_workload allow path: ${r.durationNs} ns per packet (BPF_PROG_RUN repeat 100000)`);
  });

  it("bpf - a pinned map survives closing the object and reopens from its pin", () => {
    const dir = mkdtempSync(join(tmpdir(), "wbt-bpffs-"));
    bpffs = dir;
    execFileSync("mount", ["-t", "bpf", "bpf", dir]);
    mounted = true;
    const pin = join(dir, "weft_ipcache");
    dp.map("weft_ipcache").pin(pin);
    pins.push(pin);
    const cPin = join(dir, MapName.counters);
    dp.map(MapName.counters).pin(cPin);
    pins.push(cPin);

    const wantPackets = counters(WEB, CACHE).packets;
    expect(wantPackets, "web -> cache has counted packets").toBeGreaterThan(0n);
    const ipcache = new TypedMap(BpfMap.fromPin(pin), ipcacheKeyCodec, ipcacheValueCodec);
    const countersFromPin = new TypedMap(BpfMap.fromPin(cPin), countersKeyCodec, countersValueCodec);
    try {
      expect(ipcache.raw.info).toMatchObject({ name: "weft_ipcache", keySize: 8, valueSize: 8 });
      dp.close(); // the object goes; the pinned maps stay
      expect(ipcache.get({ addr: "10.0.1.0", prefixlen: 24 }), "ipcache entry through the pin").toEqual({ identity: DB });
      expect(countersFromPin.get({ srcId: WEB, dstId: CACHE })?.packets, "counters through the pin").toBe(wantPackets);
    } finally {
      ipcache.raw.close();
      countersFromPin.raw.close();
      dp = TcDatapath.load(); // later tests need a live object
    }
    expect(() => BpfMap.fromPin(join(dir, "absent"))).toThrow(/bpf_obj_get .*ENOENT/);
  });

  it("bpf - attaches to tc ingress and egress of a veth and detaches", () => {
    execFileSync("ip", ["link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER]);
    const ifindex = Number(readFileSync(`/sys/class/net/${VETH}/ifindex`, "utf8"));
    const ingress = tcAttach(dp.progToWorkload, { ifindex, direction: "ingress" });
    const egress = tcAttach(dp.progToWorkload, { ifindex, direction: "egress" });
    expect(ingress.progId).toBeGreaterThan(0);
    expect(egress.progId, "one program on both hooks").toBe(ingress.progId);
    const show = (dir: string) => execFileSync("tc", ["filter", "show", "dev", VETH, dir], { encoding: "utf8" });
    expect(show("ingress")).toMatch(/weft_to_workloa.*direct-action/);
    expect(show("egress")).toMatch(/weft_to_workloa.*direct-action/);
    expect(tcDetach(ingress)).toBe(true);
    expect(tcDetach(ingress)).toBe(false);
    expect(show("ingress")).not.toMatch(/weft_to_workloa/);
    expect(show("egress")).toMatch(/weft_to_workloa/);
    tcDestroyHook(ifindex);
    expect(execFileSync("tc", ["qdisc", "show", "dev", VETH], { encoding: "utf8" })).not.toMatch(/clsact/);
  });

  it("bpf - attached on a veth's ingress, it drops then passes real pings as the policy says", () => {
    const ip = (...argv: string[]) => execFileSync("ip", argv, { stdio: "pipe" });
    ip("netns", "add", NS);
    ip("link", "add", NS_VETH, "type", "veth", "peer", "name", "wbt-dp-n1", "netns", NS);
    ip("addr", "add", `${HOST_ADDR}/30`, "dev", NS_VETH);
    ip("link", "set", NS_VETH, "up");
    ip("-n", NS, "addr", "add", `${NS_ADDR}/30`, "dev", "wbt-dp-n1");
    ip("-n", NS, "link", "set", "wbt-dp-n1", "up");
    const ping = () => {
      try {
        execFileSync("ip", ["netns", "exec", NS, "ping", "-c", "3", "-i", "0.2", "-W", "1", HOST_ADDR], { stdio: "pipe" });
        return true;
      } catch {
        return false;
      }
    };
    expect(ping(), "ping works before the program is attached").toBe(true);

    dp.ipcache.set({ addr: NS_ADDR, prefixlen: 32 }, { identity: PINGER });
    dp.ipcache.set({ addr: HOST_ADDR, prefixlen: 32 }, { identity: PINGED });
    dp.policyDefault.set(PINGED, { defaultDeny: true });
    const ifindex = Number(readFileSync(`/sys/class/net/${NS_VETH}/ifindex`, "utf8"));
    tcAttach(dp.progToWorkload, { ifindex, direction: "ingress" });

    expect(ping(), "ping to a default-deny identity with no allow rule").toBe(false);
    const denied = counters(PINGER, PINGED);
    expect(denied.drops[DropReason.defaultDeny], `drops[defaultDeny] after a denied ping: got ${denied.drops[DropReason.defaultDeny]}, want 3`).toBe(3n);
    expect(denied.packets).toBe(3n);

    dp.policy.set({ srcId: PINGER, dstId: PINGED, proto: 1 /* ICMP */, port: 0, portBits: 0 }, { verdict: "allow" });
    expect(ping(), "ping once ICMP is allowed").toBe(true);
    const allowed = counters(PINGER, PINGED);
    expect(allowed.packets, "3 more packets").toBe(6n);
    expect(totalDrops(allowed), "no more drops").toBe(3n);
    expect(allowed.bytes, "bytes grow by 3 echo requests of 98 bytes (84 IPv4 + 14 Ethernet)").toBe(denied.bytes + 3n * 98n);
    tcDestroyHook(ifindex);
  });
});
