/**
 * Root: pinning and restart ("fail static"). TcDatapath.open on a private bpffs pins every map
 * and program; an attached program keeps enforcing after the agent's objects are closed; a new
 * open reuses the pinned maps with their entries and counters, and replacing the attachment is
 * atomic (a flood of denied pings gets no reply while the filter is replaced again and again).
 * Incompatible pins and non-bpffs pin directories are typed errors. Real pings from a test
 * namespace (the "workload") to the root end of its veth: the host's echo replies leave through
 * that end's egress, where weft_to_workload enforces (host -> workload). Replies rather than
 * requests are policed because a sender whose own packet is dropped at egress gets ENOBUFS and
 * ping retries, which would make exact counts depend on ping.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TcDatapath } from "./datapath.js";
import { BpfFsError, BpfPinIncompatibleError } from "./errors.js";
import { DropReason, MapName, ProgramName, countersKeyCodec, countersValueCodec, zeroCounters } from "./layout.js";
import { LbMapName } from "./lb-layout.js";
import { BpfMap, TypedMap } from "./map.js";
import { removePins } from "./pin.js";
import { tcAttach, tcDestroyHook } from "./tc.js";

const isRoot = process.getuid?.() === 0;

const tag = `wbt-pin${process.pid % 10000}`;
const NS = `${tag}-w`;
const HOST_DEV = `${tag}-h`; // root end: weft_to_workload on egress
const NS_DEV = `${tag}-n`;
const HOST_ADDR = "198.18.7.1";
const NS_ADDR = "198.18.7.2";
const HOST_ID = 700;
const W_ID = 701;
const ICMP = 1;

const sh = (cmd: string, ...argv: string[]) => execFileSync(cmd, argv, { stdio: "pipe", encoding: "utf8" });
const quiet = (cmd: string, ...argv: string[]) => {
  try {
    execFileSync(cmd, argv, { stdio: "ignore" });
  } catch {
    /* already gone */
  }
};

/** Pings the host end from the test namespace; how many echo replies came back. */
function ping(count = 3, interval = "0.2"): { sent: number; received: number } {
  let out: string;
  try {
    out = sh("ip", "netns", "exec", NS, "ping", "-n", "-q", "-c", String(count), "-i", interval, "-W", "1", HOST_ADDR);
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? "");
  }
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  if (!m) throw new Error(`ping printed no summary: ${out}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}

function progIdOfPin(path: string): number {
  return (JSON.parse(sh("bpftool", "prog", "show", "pinned", path, "-j")) as { id: number }).id;
}

describe.skipIf(!isRoot)("bpf - pinned datapath across an agent restart", () => {
  let mnt: string;
  let pinDir: string;
  let ifindex: number;
  const open: TcDatapath[] = [];
  const countersPin = () => join(pinDir, "maps", MapName.counters);
  const countersFromPin = () => {
    const m = new TypedMap(BpfMap.fromPin(countersPin()), countersKeyCodec, countersValueCodec);
    try {
      return m.get({ srcId: HOST_ID, dstId: W_ID }) ?? zeroCounters();
    } finally {
      m.raw.close();
    }
  };

  beforeAll(() => {
    mnt = mkdtempSync(join(tmpdir(), "wbt-pinfs-"));
    sh("mount", "-t", "bpf", "bpf", mnt);
    pinDir = join(mnt, "weft");
    sh("ip", "netns", "add", NS);
    sh("ip", "link", "add", HOST_DEV, "type", "veth", "peer", "name", NS_DEV, "netns", NS);
    sh("ip", "addr", "add", `${HOST_ADDR}/30`, "dev", HOST_DEV);
    sh("ip", "link", "set", HOST_DEV, "up");
    sh("ip", "-n", NS, "addr", "add", `${NS_ADDR}/30`, "dev", NS_DEV);
    sh("ip", "-n", NS, "link", "set", NS_DEV, "up");
    ifindex = Number(readFileSync(`/sys/class/net/${HOST_DEV}/ifindex`, "utf8"));
  });

  afterAll(() => {
    if (ifindex) quiet("tc", "qdisc", "del", "dev", HOST_DEV, "clsact");
    quiet("ip", "link", "del", HOST_DEV);
    quiet("ip", "netns", "del", NS);
    for (const dp of open) dp.close();
    if (mnt) {
      try {
        removePins(pinDir);
      } finally {
        quiet("umount", mnt);
        rmSync(mnt, { recursive: true, force: true });
      }
    }
  });

  it("bpf - open pins every map and program; the attached program enforces the pinned maps", () => {
    expect(ping().received, "ping before anything is attached").toBe(3);
    const dp = TcDatapath.open({ pinDir });
    open.push(dp);
    // Every map the objects declare: the datapath's (MapName) and the services' tc fallback (LbMapName).
    expect(Object.keys(dp.pinOutcome).sort(), "maps opened").toEqual([...Object.values(MapName), ...Object.values(LbMapName)].sort());
    expect(Object.entries(dp.pinOutcome).filter(([, o]) => o !== "created"), "first open creates every map: maps not created").toEqual([]);
    for (const m of Object.keys(dp.pinOutcome)) expect(existsSync(join(pinDir, "maps", m)), `maps/${m} pinned`).toBe(true);
    for (const p of Object.values(ProgramName)) expect(existsSync(join(pinDir, "progs", p)), `progs/${p} pinned`).toBe(true);

    dp.ipcache.set({ addr: HOST_ADDR, prefixlen: 32 }, { identity: HOST_ID });
    dp.ipcache.set({ addr: NS_ADDR, prefixlen: 32 }, { identity: W_ID });
    dp.policyDefault.set(W_ID, { defaultDeny: true });
    tcAttach(dp.progToWorkload, { ifindex, direction: "egress" });
    expect(ping().received, "echo replies to a default-deny workload").toBe(0);
    expect(countersFromPin().drops[DropReason.defaultDeny], "drops[defaultDeny] through the pinned counters").toBe(3n);
  });

  it("bpf - after the agent closes its objects the attached program keeps enforcing", () => {
    const dp = open.pop();
    dp?.close();
    expect(ping().received, "still denied with no agent").toBe(0);
    expect(countersFromPin().drops[DropReason.defaultDeny], "still counted into the pinned map").toBe(6n);
  });

  it("bpf - a restarted agent reuses the pinned maps with their entries, replaces the attachment and steers the same maps", () => {
    const oldProg = Number(/ id (\d+)/.exec(sh("tc", "filter", "show", "dev", HOST_DEV, "egress"))?.[1]);
    const dp = TcDatapath.open({ pinDir });
    open.push(dp);
    expect(Object.entries(dp.pinOutcome).filter(([, o]) => o !== "reused"), "every map reused: maps not reused").toEqual([]);
    expect(dp.ipcache.get({ addr: NS_ADDR, prefixlen: 32 }), "ipcache entry kept").toEqual({ identity: W_ID });
    expect(dp.policyDefault.get(W_ID)).toEqual({ defaultDeny: true });
    expect((dp.counters.get({ srcId: HOST_ID, dstId: W_ID }) ?? zeroCounters()).drops[DropReason.defaultDeny], "counters kept").toBe(6n);

    const a = tcAttach(dp.progToWorkload, { ifindex, direction: "egress" });
    expect(a.progId, "a new program is attached").not.toBe(oldProg);
    expect(progIdOfPin(join(pinDir, "progs", ProgramName.toWorkload)), "progs/ pin replaced by the new program").toBe(a.progId);
    const filters = sh("tc", "filter", "show", "dev", HOST_DEV, "egress").split("\n").filter((l) => / id \d+/.test(l));
    expect(filters, "exactly one filter on the hook").toHaveLength(1);

    dp.policy.set({ srcId: HOST_ID, dstId: W_ID, proto: ICMP, port: 0, portBits: 0 }, { verdict: "allow" });
    expect(ping().received, "the new program reads the policy written through the reopened maps").toBe(3);
    expect((dp.counters.get({ srcId: HOST_ID, dstId: W_ID }) ?? zeroCounters()).packets, "6 denied + 3 passed replies").toBe(9n);
  });

  it("bpf - replacing the attached program is atomic: a denied ping flood gets no reply during many replacements", async () => {
    const dpA = open[open.length - 1];
    if (!dpA) throw new Error("no open datapath");
    const dpB = TcDatapath.open({ pinDir }); // a second instance of the programs over the same maps
    open.push(dpB);
    dpA.policy.set({ srcId: HOST_ID, dstId: W_ID, proto: ICMP, port: 0, portBits: 0 }, { verdict: "deny" });

    // ping paces itself down to ~100/s when no reply comes back; keep replacing until it is done
    const flood = spawn("ip", ["netns", "exec", NS, "ping", "-n", "-q", "-c", "300", "-i", "0.002", "-W", "1", HOST_ADDR], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let done = false;
    flood.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => flood.on("exit", () => resolve()));
    void exited.then(() => (done = true));
    let replacements = 0;
    while (!done) {
      for (let i = 0; i < 20; i++, replacements++) tcAttach((replacements % 2 ? dpA : dpB).progToWorkload, { ifindex, direction: "egress" });
      await new Promise((r) => setImmediate(r));
    }
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    expect(m, `ping summary in ${out}`).not.toBeNull();
    const [sent, received] = [Number(m?.[1]), Number(m?.[2])];
    console.log(`bpf - ${replacements} filter replacements during ${sent} denied pings: ${received} replies`);
    expect(replacements, "replacements made").toBeGreaterThan(sent);
    expect(sent, "pings sent").toBe(300);
    expect(received, "replies that slipped through a replacement").toBe(0);
    expect(countersFromPin().drops[DropReason.policyDeny], "every echo reply dropped by policy").toBe(BigInt(sent));
  });

  it("bpf - an incompatible pinned map is a typed error naming it, or is replaced on request", () => {
    const dir = join(mnt, "old");
    sh("mkdir", "-p", join(dir, "maps"));
    const stale = join(dir, "maps", MapName.counters);
    // what an older build pinned: 24-byte counters
    sh("bpftool", "map", "create", stale, "type", "lru_percpu_hash", "key", "8", "value", "24", "entries", "65536", "name", MapName.counters);
    let err: unknown;
    try {
      open.push(TcDatapath.open({ pinDir: dir }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BpfPinIncompatibleError);
    const e = err as BpfPinIncompatibleError;
    expect(e.mapName).toBe(MapName.counters);
    expect(e.code).toBe("EINVAL");
    expect(e.message, e.message).toMatch(/valueSize 24, this build wants 80/);
    expect(e.message).toMatch(/onIncompatible: "replace"/);
    expect(BpfMap.fromPin(stale).info.valueSize, "the stale pin is left alone").toBe(24);

    const dp = TcDatapath.open({ pinDir: dir, onIncompatible: "replace" });
    open.push(dp);
    expect(dp.pinOutcome[MapName.counters]).toBe("replaced");
    expect(dp.pinOutcome[MapName.ipcache]).toBe("created");
    const pinned = BpfMap.fromPin(stale);
    expect(pinned.info.valueSize, "the pin now holds this build's map").toBe(80);
    pinned.close();
    dp.close();
    open.pop();
    removePins(dir);
    expect(existsSync(dir), "removePins removes the pin directory").toBe(false);
  });

  it("bpf - a pin directory outside a bpf filesystem is a clear error", () => {
    const notBpf = mkdtempSync(join(tmpdir(), "wbt-notbpf-"));
    try {
      expect(() => TcDatapath.open({ pinDir: join(notBpf, "weft") })).toThrow(BpfFsError);
      expect(() => TcDatapath.open({ pinDir: join(notBpf, "weft") })).toThrow(`${notBpf} is not a bpf filesystem`);
      expect(() => TcDatapath.open({ pinDir: join(notBpf, "weft") })).toThrow(`mount -t bpf bpf ${notBpf}`);
      expect(existsSync(join(notBpf, "weft")), "nothing created there").toBe(false);
    } finally {
      rmSync(notBpf, { recursive: true, force: true });
    }
  });

  it("bpf - removePins removes every pin while the attached program stays", () => {
    for (const dp of open.splice(0)) dp.close();
    removePins(pinDir);
    expect(existsSync(pinDir)).toBe(false);
    expect(ping().received, "the attachment still holds the programs and maps (deny)").toBe(0);
    tcDestroyHook(ifindex);
    expect(ping().received, "detached: traffic flows").toBe(3);
  });
});
