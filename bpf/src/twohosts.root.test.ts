/**
 * Root: the datapath between two "hosts" on real traffic. Four network namespaces:
 *
 *   wa ── veth ── ha ══ underlay veth 198.19.0.1 <-> 198.19.0.2 ══ hb ── veth ── wb
 *   10.91.1.2   (host side 10.91.1.1)                       (host side 10.91.2.1)   10.91.2.2
 *
 * Each host has its own pinned datapath (TcDatapath.open on a private bpffs), a VXLAN collect_md
 * device with WEFT_VXLAN_MAC (weft_vxlan_in on ingress) and, for the WireGuard path, a real
 * wireguard-go interface (weft_overlay_in on ingress, an L3 TUN device). The host side of each
 * workload veth carries weft_from_workload on ingress and weft_to_workload on egress. Programs are
 * attached inside the namespaces with `tc ... bpf object-pinned <pin>`.
 *
 * Shown: same-site traffic is VXLAN on the underlay with VNI = the sender's identity and is
 * counted once at the destination (the mark keeps weft_to_workload from counting it again); a
 * deny rule drops it at the destination with drops[policyDeny]; VXLAN from an underlay address
 * that is not a tunnel peer is dropped with drops[tunnelSource]; without a tunnel entry traffic
 * takes WireGuard and is enforced (once) by weft_overlay_in.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TcDatapath } from "./datapath.js";
import { DropReason, ProgramName, dropCount, ReservedIdentity, WEFT_VXLAN_MAC, totalDrops, type CountersValue, zeroCounters } from "./layout.js";
import { removePins } from "./pin.js";

const isRoot = process.getuid?.() === 0;
const hasWireguardGo = (() => {
  try {
    execFileSync("sh", ["-c", "command -v wireguard-go && command -v wg"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const tag = `wbt-2h${process.pid % 10000}`;
const A_ID = 70001;
const B_ID = 70002;
const UNDERLAY = { a: "198.19.0.1", b: "198.19.0.2" };
const WORKLOAD = { a: "10.91.1.2", b: "10.91.2.2" };
const PREFIX = { a: "10.91.1.0", b: "10.91.2.0" };

interface Host {
  ns: string;
  workloadNs: string;
  /** Host side of the workload veth. */
  wdev: string;
  underlay: string;
  vxlan: string;
  wg: string;
  dp?: TcDatapath;
  wgd?: ChildProcess;
}

const host = (n: "a" | "b"): Host => ({
  ns: `${tag}-h${n}`,
  workloadNs: `${tag}-w${n}`,
  wdev: `${tag}${n}w`,
  underlay: `${tag}${n}u`,
  vxlan: `${tag}${n}x`,
  wg: `${tag}${n}g`,
});

const sh = (cmd: string, ...argv: string[]) => execFileSync(cmd, argv, { stdio: "pipe", encoding: "utf8" });
const inNs = (ns: string, ...argv: string[]) => sh("ip", "netns", "exec", ns, ...argv);
const quiet = (cmd: string, ...argv: string[]) => {
  try {
    execFileSync(cmd, argv, { stdio: "ignore" });
  } catch {
    /* already gone */
  }
};

function ifindexIn(ns: string, dev: string): number {
  return (JSON.parse(sh("ip", "-n", ns, "-j", "link", "show", "dev", dev)) as { ifindex: number }[])[0]?.ifindex ?? 0;
}

/** Attaches a pinned program inside a namespace, replacing the filter at prio 1 handle 1. */
function attachPinned(ns: string, dev: string, direction: "ingress" | "egress", pin: string): void {
  try {
    inNs(ns, "tc", "qdisc", "add", "dev", dev, "clsact");
  } catch {
    /* the clsact qdisc exists already */
  }
  inNs(ns, "tc", "filter", "replace", "dev", dev, direction, "prio", "1", "handle", "1", "bpf", "object-pinned", pin, "direct-action");
}

/** Pings B's workload from A's workload; echo replies received. */
function ping(count = 3): number {
  let out: string;
  try {
    out = inNs(`${tag}-wa`, "ping", "-n", "-q", "-c", String(count), "-i", "0.2", "-W", "1", WORKLOAD.b);
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? "");
  }
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  if (!m) throw new Error(`ping printed no summary: ${out}`);
  return Number(m[2]);
}

interface VxlanPacket {
  outerSrc: string;
  outerDst: string;
  vni: number;
  innerDstMac: string;
}

/** VXLAN packets (UDP 4789) in a pcap file of an Ethernet capture. */
function vxlanPackets(file: string): VxlanPacket[] {
  const buf = readFileSync(file);
  const magic = buf.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4) throw new Error(`not a little-endian microsecond pcap: magic 0x${magic.toString(16)}`);
  if (buf.readUInt32LE(20) !== 1) throw new Error("not an Ethernet capture");
  const out: VxlanPacket[] = [];
  for (let off = 24; off + 16 <= buf.length; ) {
    const caplen = buf.readUInt32LE(off + 8);
    const pkt = buf.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    if (pkt.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (pkt.readUInt8(14) & 0xf) * 4;
    if (pkt.readUInt8(14 + 9) !== 17) continue;
    const udp = 14 + ihl;
    if (pkt.readUInt16BE(udp + 2) !== 4789) continue;
    const vx = udp + 8;
    const ip = (o: number) => [...pkt.subarray(o, o + 4)].join(".");
    out.push({
      outerSrc: ip(14 + 12),
      outerDst: ip(14 + 16),
      vni: pkt.readUIntBE(vx + 4, 3),
      innerDstMac: [...pkt.subarray(vx + 8, vx + 14)].map((b) => b.toString(16).padStart(2, "0")).join(":"),
    });
  }
  return out;
}

/** Runs `fn` while tcpdump captures UDP 4789 on B's underlay device; the VXLAN packets seen, and tcpdump's reading of them. */
async function captureUnderlay(b: Host, dir: string, fn: () => void): Promise<{ packets: VxlanPacket[]; text: string }> {
  const file = join(dir, "underlay.pcap");
  const dump = spawn("ip", ["netns", "exec", b.ns, "tcpdump", "-i", b.underlay, "-nn", "-U", "--immediate-mode", "-w", file, "udp", "port", "4789"], { stdio: ["ignore", "ignore", "pipe"] });
  const exited = new Promise<void>((resolve) => dump.on("exit", () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      let err = "";
      const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
      dump.stderr.on("data", (d: Buffer) => {
        err += d.toString();
        if (err.includes("listening on")) {
          clearTimeout(timer);
          resolve();
        }
      });
      dump.on("exit", () => reject(new Error(`tcpdump exited: ${err}`)));
    });
    fn();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    dump.kill("SIGINT");
    await exited;
  }
  return { packets: vxlanPackets(file), text: sh("tcpdump", "-r", file, "-nn", "-v") };
}

describe.skipIf(!isRoot)("bpf - two hosts: VXLAN with the identity in the VNI, and the WireGuard path", () => {
  const a = host("a");
  const b = host("b");
  let mnt: string;
  let scratch: string;
  const dpOf = (h: Host): TcDatapath => {
    if (!h.dp) throw new Error(`no datapath for ${h.ns}`);
    return h.dp;
  };
  const counters = (h: Host, srcId: number, dstId: number): CountersValue => (dpOf(h).counters.get({ srcId, dstId }) ?? zeroCounters());

  beforeAll(() => {
    mnt = mkdtempSync(join(tmpdir(), "wbt-2hfs-"));
    sh("mount", "-t", "bpf", "bpf", mnt);
    scratch = mkdtempSync(join(tmpdir(), "wbt-2h-"));

    for (const [h, n] of [
      [a, "a"],
      [b, "b"],
    ] as const) {
      sh("ip", "netns", "add", h.ns);
      sh("ip", "netns", "add", h.workloadNs);
      for (const [k, v] of [
        ["net.ipv4.ip_forward", "1"],
        ["net.ipv4.conf.all.rp_filter", "0"],
        ["net.ipv4.conf.default.rp_filter", "0"],
      ])
        inNs(h.ns, "sysctl", "-qw", `${k}=${v}`);
      sh("ip", "-n", h.ns, "link", "set", "lo", "up");
      // workload: eth0 in its own namespace, the host side in the host namespace
      sh("ip", "-n", h.ns, "link", "add", h.wdev, "type", "veth", "peer", "name", "eth0", "netns", h.workloadNs);
      const net = n === "a" ? "10.91.1" : "10.91.2";
      sh("ip", "-n", h.ns, "addr", "add", `${net}.1/24`, "dev", h.wdev);
      sh("ip", "-n", h.ns, "link", "set", h.wdev, "up");
      sh("ip", "-n", h.workloadNs, "addr", "add", `${net}.2/24`, "dev", "eth0");
      sh("ip", "-n", h.workloadNs, "link", "set", "eth0", "up");
      sh("ip", "-n", h.workloadNs, "link", "set", "lo", "up");
      sh("ip", "-n", h.workloadNs, "route", "add", "default", "via", `${net}.1`);
      // the VXLAN collect_md device every Weft host has, with the fixed MAC
      sh("ip", "-n", h.ns, "link", "add", h.vxlan, "address", WEFT_VXLAN_MAC, "type", "vxlan", "external", "dstport", "4789");
      sh("ip", "-n", h.ns, "link", "set", h.vxlan, "up");
    }
    // underlay between the hosts
    sh("ip", "-n", a.ns, "link", "add", a.underlay, "type", "veth", "peer", "name", b.underlay, "netns", b.ns);
    sh("ip", "-n", a.ns, "addr", "add", `${UNDERLAY.a}/24`, "dev", a.underlay);
    sh("ip", "-n", b.ns, "addr", "add", `${UNDERLAY.b}/24`, "dev", b.underlay);
    sh("ip", "-n", a.ns, "link", "set", a.underlay, "up");
    sh("ip", "-n", b.ns, "link", "set", b.underlay, "up");

    for (const [h, peer, peerPrefix] of [
      [a, UNDERLAY.b, PREFIX.b],
      [b, UNDERLAY.a, PREFIX.a],
    ] as const) {
      const dp = TcDatapath.open({ pinDir: join(mnt, h.ns) });
      h.dp = dp;
      dp.ipcache.setMany([
        [{ addr: PREFIX.a, prefixlen: 24 }, { identity: A_ID }],
        [{ addr: PREFIX.b, prefixlen: 24 }, { identity: B_ID }],
      ]);
      dp.tunnels.set({ addr: peerPrefix, prefixlen: 24 }, { remote: peer });
      dp.tunnelPeers.set(peer, {});
      dp.setConfig({ vxlanIfindex: ifindexIn(h.ns, h.vxlan) });
      const pin = (p: string) => join(mnt, h.ns, "progs", p);
      attachPinned(h.ns, h.wdev, "ingress", pin(ProgramName.fromWorkload));
      attachPinned(h.ns, h.wdev, "egress", pin(ProgramName.toWorkload));
      attachPinned(h.ns, h.vxlan, "ingress", pin(ProgramName.vxlanIn));
    }
  }, 60_000);

  afterAll(() => {
    for (const h of [a, b]) {
      h.wgd?.kill();
      h.dp?.close();
      quiet("ip", "netns", "del", h.workloadNs);
      quiet("ip", "netns", "del", h.ns); // takes the veths, the VXLAN and WireGuard devices with it
    }
    if (mnt) {
      for (const h of [a, b]) {
        try {
          removePins(join(mnt, h.ns));
        } catch {
          /* unmounted below anyway */
        }
      }
      quiet("umount", mnt);
      rmSync(mnt, { recursive: true, force: true });
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("bpf - a ping between workloads on two hosts is VXLAN on the underlay with the sender's identity as VNI", async () => {
    let received = -1;
    const { packets: seen, text } = await captureUnderlay(b, scratch, () => (received = ping(3)));
    expect(received, "echo replies through VXLAN").toBe(3);
    const requests = seen.filter((p) => p.outerSrc === UNDERLAY.a);
    const replies = seen.filter((p) => p.outerSrc === UNDERLAY.b);
    expect(requests.map((p) => p.vni), `VNIs of A -> B packets in:\n${text}`).toEqual([A_ID, A_ID, A_ID]);
    expect(replies.map((p) => p.vni), `VNIs of B -> A packets in:\n${text}`).toEqual([B_ID, B_ID, B_ID]);
    expect(text, "tcpdump reads the VNI too").toContain(`vni ${A_ID}`);
    expect(new Set(seen.map((p) => p.innerDstMac)), "inner destination MAC").toEqual(new Set([WEFT_VXLAN_MAC]));
    expect(requests.every((p) => p.outerDst === UNDERLAY.b)).toBe(true);

    const atB = counters(b, A_ID, B_ID);
    expect(atB.packets, "A -> B counted once at B (weft_vxlan_in, not again at weft_to_workload)").toBe(3n);
    expect(totalDrops(atB)).toBe(0n);
    expect(counters(a, B_ID, A_ID).packets, "B -> A counted once at A").toBe(3n);
    expect(dpOf(a).counters.get({ srcId: A_ID, dstId: B_ID }), "no counting at the sender").toBeUndefined();
  });

  it("bpf - a deny rule at the destination drops A -> B with drops[policyDeny]", () => {
    const rule = { srcId: A_ID, dstId: B_ID, proto: 0, port: 0, portBits: 0 };
    dpOf(b).policy.set(rule, { verdict: "deny" });
    try {
      const before = counters(b, A_ID, B_ID);
      expect(ping(3), "echo replies with a deny rule").toBe(0);
      const after = counters(b, A_ID, B_ID);
      expect(dropCount(after, "policyDeny") - dropCount(before, "policyDeny"), "drops[policyDeny] at B").toBe(3n);
      expect(after.packets - before.packets).toBe(3n);
    } finally {
      dpOf(b).policy.delete(rule);
    }
    expect(ping(1), "passes again once the rule is gone").toBe(1);
  });

  it("bpf - VXLAN from an underlay address that is not a tunnel peer is dropped with drops[tunnelSource]", () => {
    expect(dpOf(b).tunnelPeers.delete(UNDERLAY.a)).toBe(true);
    try {
      const before = dropCount(counters(b, ReservedIdentity.unknown, B_ID), "tunnelSource");
      expect(ping(3), "echo replies from an unknown tunnel source").toBe(0);
      const after = dropCount(counters(b, ReservedIdentity.unknown, B_ID), "tunnelSource");
      expect(after - before, "drops[tunnelSource] for (unknown, B) at B").toBe(3n);
      expect(counters(b, A_ID, B_ID).drops[DropReason.tunnelSource], "the VNI of an unknown sender is not charged").toBe(0n);
    } finally {
      dpOf(b).tunnelPeers.set(UNDERLAY.a, {});
    }
    expect(ping(1)).toBe(1);
  });

  it("bpf - a workload using an address that is not its own is dropped as spoofed: at the receiver (VXLAN), and at the sender with weft_endpoints", () => {
    const SPOOF = "10.91.9.9";
    const spoofPing = () => {
      try {
        return /(\d+) received/.exec(inNs(`${tag}-wa`, "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1", "-I", SPOOF, WORKLOAD.b))?.[1];
      } catch (err) {
        return /(\d+) received/.exec(String((err as { stdout?: string }).stdout ?? ""))?.[1];
      }
    };
    sh("ip", "-n", `${tag}-wa`, "addr", "add", `${SPOOF}/32`, "dev", "eth0");
    const endpointIndex = ifindexIn(a.ns, a.wdev);
    try {
      // B: the inner source is not in A's workload prefix, whose tunnel is A.
      const atB = () => dropCount(counters(b, ReservedIdentity.world, B_ID), "spoofed");
      const beforeB = atB();
      expect(spoofPing(), "replies to a spoofed source over VXLAN").toBe("0");
      expect(atB() - beforeB, "drops[spoofed] at B for (world, B)").toBe(3n);
      // A: with its endpoint registered, the spoofed packet never leaves the host.
      dpOf(a).endpoints.set(endpointIndex, { addr: WORKLOAD.a, identity: A_ID });
      const atA = () => dropCount(counters(a, ReservedIdentity.world, B_ID), "spoofed");
      const [beforeA, beforeB2] = [atA(), atB()];
      expect(spoofPing(), "replies with the endpoint check at the sender").toBe("0");
      expect(atA() - beforeA, "drops[spoofed] at A").toBe(3n);
      expect(atB() - beforeB2, "nothing reached B").toBe(0n);
      expect(ping(1), "the workload's own address still passes the endpoint check").toBe(1);
    } finally {
      dpOf(a).endpoints.delete(endpointIndex);
      sh("ip", "-n", `${tag}-wa`, "addr", "del", `${SPOOF}/32`, "dev", "eth0");
    }
  });

  describe.skipIf(!hasWireguardGo)("the WireGuard path (wireguard-go, an L3 TUN device)", () => {
    beforeAll(async () => {
      const keys = Object.fromEntries(
        [a, b].map((h) => {
          const priv = sh("wg", "genkey").trim();
          const pub = execFileSync("wg", ["pubkey"], { input: priv, encoding: "utf8" }).trim();
          return [h.ns, { priv, pub }];
        }),
      );
      for (const [h, peer, peerUnderlay, peerPrefix] of [
        [a, b, UNDERLAY.b, PREFIX.b],
        [b, a, UNDERLAY.a, PREFIX.a],
      ] as const) {
        h.wgd = spawn("ip", ["netns", "exec", h.ns, "wireguard-go", "-f", h.wg], { stdio: "ignore", env: { ...process.env, WG_PROCESS_FOREGROUND: "1" } });
        // wireguard-go makes the TUN device, then its UAPI socket (shared by all namespaces): `wg`
        // needs the socket, else it asks the kernel, which has no WireGuard ("Protocol not supported").
        const uapi = `/var/run/wireguard/${h.wg}.sock`;
        const ready = () => {
          try {
            sh("ip", "-n", h.ns, "link", "show", "dev", h.wg);
            return existsSync(uapi);
          } catch {
            return false;
          }
        };
        for (let i = 0; i < 200 && !ready(); i++) await new Promise((r) => setTimeout(r, 50));
        if (!ready()) throw new Error(`wireguard-go did not make ${h.wg} and ${uapi} within 10 s in ${h.ns}`);
        const keyFile = join(scratch, `${h.ns}.key`);
        execFileSync("sh", ["-c", `umask 077; cat > ${keyFile}`], { input: keys[h.ns]?.priv });
        inNs(h.ns, "wg", "set", h.wg, "private-key", keyFile, "listen-port", "51820", "peer", keys[peer.ns]?.pub ?? "", "allowed-ips", `${peerPrefix}/24`, "endpoint", `${peerUnderlay}:51820`);
        sh("ip", "-n", h.ns, "link", "set", h.wg, "mtu", "1420", "up");
        inNs(h.ns, "sysctl", "-qw", `net.ipv4.conf.${h.wg}.rp_filter=0`);
        sh("ip", "-n", h.ns, "route", "add", `${peerPrefix}/24`, "dev", h.wg);
        attachPinned(h.ns, h.wg, "ingress", join(mnt, h.ns, "progs", ProgramName.overlayIn));
        // no tunnel entry any more: weft_from_workload passes and routing picks WireGuard
        dpOf(h).tunnels.delete({ addr: peerPrefix, prefixlen: 24 });
      }
    }, 60_000);

    it("bpf - without a tunnel entry traffic goes through WireGuard, enforced and counted once by weft_overlay_in", async () => {
      const before = counters(b, A_ID, B_ID);
      let received = -1;
      const { packets: seen } = await captureUnderlay(b, scratch, () => (received = ping(3)));
      expect(received, "echo replies through WireGuard").toBe(3);
      expect(seen, "no VXLAN on the underlay").toEqual([]);
      const after = counters(b, A_ID, B_ID);
      expect(after.packets - before.packets, "A -> B counted once at B (weft_overlay_in marks, weft_to_workload skips)").toBe(3n);

      const rule = { srcId: A_ID, dstId: B_ID, proto: 1, port: 0, portBits: 0 };
      dpOf(b).policy.set(rule, { verdict: "deny" });
      try {
        expect(ping(3), "echo replies with a deny rule on the WireGuard path").toBe(0);
        expect(dropCount(counters(b, A_ID, B_ID), "policyDeny") - dropCount(after, "policyDeny"), "drops[policyDeny] at B's weft0").toBe(3n);
      } finally {
        dpOf(b).policy.delete(rule);
      }
    });
  });
});
