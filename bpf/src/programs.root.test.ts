/**
 * Root: each tc program on crafted packets with BPF_PROG_RUN: verdicts, counters per drop reason,
 * the "policy already enforced" mark, VXLAN redirect with the inner destination MAC rewritten.
 * Needs CAP_BPF/CAP_NET_ADMIN. (BPF_PROG_RUN builds linear skbs only, so ports past the linear
 * data are not crafted here; IPv4 options move them back instead.)
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TcDatapath } from "./datapath.js";
import { DropReason, ReservedIdentity, TcAction, WEFT_MARK_ENFORCED, WEFT_VXLAN_MAC, totalDrops, zeroCounters, type CountersValue } from "./layout.js";
import { ipv4Frame, ipv4Packet, macAt, type PacketSpec } from "./packet.js";
import { testRun } from "./testrun.js";

const isRoot = process.getuid?.() === 0;

const TCP = 6;
const WEB = 100; // 10.0.0.0/24
const DB = 200; // 10.0.1.0/24, default deny, web may reach tcp/5432
const BIG = 0x1000000; // 10.0.9.0/24: does not fit a VNI
const OTHER_MARK = 0x5; // someone else's mark bits: never touched
const web = (over: Partial<PacketSpec> = {}): PacketSpec => ({ src: "10.0.0.5", dst: "10.0.1.7", proto: "tcp", sport: 40000, dport: 5432, ...over });
const json = (v: unknown) => JSON.stringify(v, (_, x: unknown) => (typeof x === "bigint" ? String(x) : x));

describe.skipIf(!isRoot)("bpf - programs under BPF_PROG_RUN", () => {
  let dp: TcDatapath;
  const counters = (srcId: number, dstId: number): CountersValue => (dp.counters.get({ srcId, dstId }) ?? zeroCounters());
  const drops = (srcId: number, dstId: number, reason: keyof typeof DropReason) => counters(srcId, dstId).drops[DropReason[reason]];

  beforeAll(() => {
    dp = TcDatapath.load();
    dp.ipcache.setMany([
      [{ addr: "10.0.0.0", prefixlen: 24 }, { identity: WEB }],
      [{ addr: "10.0.1.0", prefixlen: 24 }, { identity: DB }],
      [{ addr: "10.0.9.0", prefixlen: 24 }, { identity: BIG }],
    ]);
    dp.policy.setMany([
      [{ srcId: WEB, dstId: DB, proto: TCP, port: 5432, portBits: 16 }, { verdict: "allow" }],
      [{ srcId: WEB, dstId: DB, proto: TCP, port: 6000, portBits: 16 }, { verdict: "deny" }],
    ]);
    dp.policyDefault.set(DB, { defaultDeny: true });
  });
  afterAll(() => dp?.close());
  beforeEach(() => {
    for (const k of [...dp.counters.keys()]) dp.counters.delete(k);
  });

  describe("weft_overlay_in (weft0, L3)", () => {
    it("bpf - an allowed packet passes, is counted once and gets the enforced mark; other mark bits stay", () => {
      const pkt = ipv4Packet(web());
      const r = testRun(dp.progOverlayIn, pkt, { mark: OTHER_MARK });
      expect(r.retval, `retval: got ${r.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
      expect(r.mark, `mark: got 0x${r.mark.toString(16)}`).toBe(OTHER_MARK | WEFT_MARK_ENFORCED);
      expect(r.dataOut.equals(pkt), "packet unchanged").toBe(true);
      const want = zeroCounters();
      want.packets = 1n;
      want.bytes = BigInt(pkt.length);
      expect(counters(WEB, DB), `got ${json(counters(WEB, DB))}`).toEqual(want);
    });

    it("bpf - each drop reason lands in its own counter slot and a dropped packet gets no mark", () => {
      const deny = testRun(dp.progOverlayIn, ipv4Packet(web({ dport: 6000 })));
      expect(deny.retval).toBe(TcAction.shot);
      expect(deny.mark & WEFT_MARK_ENFORCED, "no enforced mark on a drop").toBe(0);
      expect(testRun(dp.progOverlayIn, ipv4Packet(web({ dport: 22 }))).retval).toBe(TcAction.shot);
      expect(testRun(dp.progOverlayIn, ipv4Packet(web({ dport: 23 }))).retval).toBe(TcAction.shot);
      // TCP whose header stops before the ports: malformed, still blamed on the pair
      const cut = ipv4Packet(web()).subarray(0, 22);
      cut.writeUInt16BE(22, 2);
      expect(testRun(dp.progOverlayIn, cut).retval).toBe(TcAction.shot);
      const got = counters(WEB, DB);
      expect(got.drops[DropReason.policyDeny], `drops[policyDeny] in ${json(got)}`).toBe(1n);
      expect(got.drops[DropReason.defaultDeny], `drops[defaultDeny] in ${json(got)}`).toBe(2n);
      expect(got.drops[DropReason.malformed], `drops[malformed] in ${json(got)}`).toBe(1n);
      expect(got.drops[DropReason.none]).toBe(0n);
      expect(got.packets).toBe(4n);
    });

    it("bpf - an IPv4 header that cannot be read is malformed and counted for (unknown, unknown)", () => {
      const bad = ipv4Packet(web());
      bad.writeUInt8(0x43, 0); // ihl 3 (< 20 bytes)
      expect(testRun(dp.progOverlayIn, bad).retval).toBe(TcAction.shot);
      expect(drops(ReservedIdentity.unknown, ReservedIdentity.unknown, "malformed")).toBe(1n);
    });

    it("bpf - IPv4 options move the ports back and are still read", () => {
      const opts = Buffer.alloc(8, 0x01); // NOP options
      expect(testRun(dp.progOverlayIn, ipv4Packet(web({ ipOptions: opts }))).retval, "tcp/5432 with options").toBe(TcAction.ok);
      expect(testRun(dp.progOverlayIn, ipv4Packet(web({ ipOptions: opts, dport: 22 }))).retval, "tcp/22 with options").toBe(TcAction.shot);
      expect(counters(WEB, DB).drops[DropReason.malformed]).toBe(0n);
    });

    it("bpf - non-IPv4 passes untouched and uncounted", () => {
      const v6 = Buffer.alloc(40);
      v6.writeUInt8(0x60, 0);
      const r = testRun(dp.progOverlayIn, v6);
      expect(r.retval).toBe(TcAction.ok);
      expect(r.mark).toBe(0);
      expect([...dp.counters.keys()]).toEqual([]);
    });
  });

  describe("weft_to_workload (workload veth egress, L2)", () => {
    it("bpf - a packet carrying the enforced mark passes without a check or a count, and the bit is cleared", () => {
      const denied = ipv4Frame(web({ dport: 6000 }));
      const r = testRun(dp.progToWorkload, denied, { mark: WEFT_MARK_ENFORCED | OTHER_MARK });
      expect(r.retval, `retval: got ${r.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
      expect(r.mark, `mark: got 0x${r.mark.toString(16)}, want 0x${OTHER_MARK.toString(16)}`).toBe(OTHER_MARK);
      expect([...dp.counters.keys()], "nothing counted").toEqual([]);
    });

    it("bpf - the overlay's mark is respected end to end: counted once at weft0, not again at the workload", () => {
      const a = testRun(dp.progOverlayIn, ipv4Packet(web()));
      const b = testRun(dp.progToWorkload, ipv4Frame(web()), { mark: a.mark });
      expect(b.retval).toBe(TcAction.ok);
      expect(b.mark).toBe(0);
      expect(counters(WEB, DB).packets, "packets for web -> db").toBe(1n);
    });

    it("bpf - without the mark it enforces and counts", () => {
      expect(testRun(dp.progToWorkload, ipv4Frame(web({ dport: 6000 })), { mark: OTHER_MARK }).retval).toBe(TcAction.shot);
      const ok = ipv4Frame(web());
      const r = testRun(dp.progToWorkload, ok, { mark: OTHER_MARK });
      expect(r.retval).toBe(TcAction.ok);
      expect(r.mark, "mark untouched").toBe(OTHER_MARK);
      const got = counters(WEB, DB);
      expect(got.packets).toBe(2n);
      expect(got.drops[DropReason.policyDeny]).toBe(1n);
      expect(totalDrops(got)).toBe(1n);
    });
  });

  describe("weft_from_workload (workload veth ingress, L2)", () => {
    const VXLAN_IFINDEX = 4242; // BPF_PROG_RUN does not follow the redirect

    beforeAll(() => {
      dp.tunnels.set({ addr: "10.0.1.0", prefixlen: 24 }, { remote: "192.168.50.2" });
      dp.tunnels.set({ addr: "10.0.0.0", prefixlen: 24 }, { remote: "192.168.50.3" });
      dp.setConfig({ vxlanIfindex: VXLAN_IFINDEX });
    });
    afterAll(() => {
      dp.tunnels.deleteMany([
        { addr: "10.0.1.0", prefixlen: 24 },
        { addr: "10.0.0.0", prefixlen: 24 },
      ]);
      dp.setConfig({ vxlanIfindex: 0 });
    });

    it("bpf - a destination in weft_tunnels is redirected with the inner destination MAC set to WEFT_VXLAN_MAC", () => {
      const frame = ipv4Frame(web({ dstMac: "02:aa:bb:cc:dd:ee", srcMac: "02:11:22:33:44:55" }));
      const r = testRun(dp.progFromWorkload, frame, { mark: WEFT_MARK_ENFORCED | OTHER_MARK });
      expect(r.retval, `retval: got ${r.retval}, want TC_ACT_REDIRECT`).toBe(TcAction.redirect);
      expect(macAt(r.dataOut, 0), "inner destination MAC").toBe(WEFT_VXLAN_MAC);
      expect(macAt(r.dataOut, 6), "source MAC unchanged").toBe("02:11:22:33:44:55");
      expect(r.dataOut.subarray(12).equals(frame.subarray(12)), "everything after the MACs unchanged").toBe(true);
      expect(r.mark, "enforced bit cleared on the way out of a workload").toBe(OTHER_MARK);
      expect([...dp.counters.keys()], "no policy and no counters at the source").toEqual([]);
    });

    it("bpf - a destination outside weft_tunnels passes unchanged (the WireGuard path)", () => {
      const frame = ipv4Frame(web({ dst: "10.0.2.1" }));
      const r = testRun(dp.progFromWorkload, frame);
      expect(r.retval, `retval: got ${r.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
      expect(r.dataOut.equals(frame)).toBe(true);
    });

    it("bpf - a source identity too large for a VNI passes unchanged", () => {
      const frame = ipv4Frame(web({ src: "10.0.9.1" }));
      const r = testRun(dp.progFromWorkload, frame);
      expect(r.retval).toBe(TcAction.ok);
      expect(r.dataOut.equals(frame)).toBe(true);
    });

    it("bpf - without a VXLAN device in weft_config it passes unchanged", () => {
      dp.setConfig({ vxlanIfindex: 0 });
      try {
        const frame = ipv4Frame(web());
        const r = testRun(dp.progFromWorkload, frame);
        expect(r.retval).toBe(TcAction.ok);
        expect(r.dataOut.equals(frame)).toBe(true);
      } finally {
        dp.setConfig({ vxlanIfindex: VXLAN_IFINDEX });
      }
      expect(dp.getConfig()).toEqual({ vxlanIfindex: VXLAN_IFINDEX });
    });
  });

  describe("weft_from_workload: source check (weft_endpoints)", () => {
    // BPF_PROG_RUN runs a tc program on the loopback device: ifindex 1 stands for the workload's veth.
    const LO = 1;
    it("bpf - a packet whose source is not the workload's registered address is dropped as spoofed; its own passes", () => {
      dp.endpoints.set(LO, { addr: "10.0.0.5", identity: WEB });
      try {
        const spoofed = testRun(dp.progFromWorkload, ipv4Frame(web({ src: "10.0.0.6" })));
        expect(spoofed.retval, `spoofed retval: got ${spoofed.retval}, want TC_ACT_SHOT`).toBe(TcAction.shot);
        expect(drops(WEB, DB, "spoofed"), "drops[spoofed] for the claimed pair").toBe(1n);
        expect(testRun(dp.progFromWorkload, ipv4Frame(web())).retval, "its own address").not.toBe(TcAction.shot);
      } finally {
        dp.endpoints.delete(LO);
      }
      expect(testRun(dp.progFromWorkload, ipv4Frame(web({ src: "10.0.0.6" }))).retval, "an unregistered device is not checked").not.toBe(TcAction.shot);
    });
  });

  describe("weft_vxlan_in (VXLAN device ingress, L2)", () => {
    it("bpf - a packet without tunnel metadata from a known peer is dropped as tunnelSource, counted for (unknown, dst)", () => {
      dp.tunnelPeers.set("192.168.50.2", {});
      try {
        const r = testRun(dp.progVxlanIn, ipv4Frame(web()));
        expect(r.retval, `retval: got ${r.retval}, want TC_ACT_SHOT`).toBe(TcAction.shot);
        expect(r.mark & WEFT_MARK_ENFORCED).toBe(0);
        expect(drops(ReservedIdentity.unknown, DB, "tunnelSource"), "drops[tunnelSource] for (unknown, db)").toBe(1n);
        expect(dp.counters.get({ srcId: WEB, dstId: DB }), "the claimed source pair is not charged").toBeUndefined();
      } finally {
        dp.tunnelPeers.delete("192.168.50.2");
      }
    });
  });

  describe("conntrack: replies pass the sender's own policy", () => {
    // This node hosts DB (default deny, nothing allows WEB -> DB on tcp/80 or icmp): DB calls out to WEB.
    const conntrack = () => dp.map("weft_conntrack");
    const clearConntrack = () => {
      const ct = conntrack();
      for (const k of [...ct.keys()]) ct.delete(k);
    };
    const reply = (over: Partial<PacketSpec> = {}): PacketSpec => ({ src: "10.0.0.5", dst: "10.0.1.7", proto: "tcp", sport: 80, dport: 33000, ...over });
    beforeEach(clearConntrack);

    it("bpf - a reply to a flow sent out of weft0 passes the default deny; before the flow was sent it is dropped", () => {
      expect(testRun(dp.progOverlayIn, ipv4Packet(reply())).retval, "unsolicited: default deny").toBe(TcAction.shot);
      const out = testRun(dp.progOverlayOut, ipv4Packet({ src: "10.0.1.7", dst: "10.0.0.5", proto: "tcp", sport: 33000, dport: 80 }));
      expect(out.retval, "weft_overlay_out never drops").toBe(TcAction.ok);
      expect([...conntrack().keys()].length, "one flow noted").toBe(1);
      const r = testRun(dp.progOverlayIn, ipv4Packet(reply()));
      expect(r.retval, `reply retval: got ${r.retval}, want TC_ACT_OK`).toBe(TcAction.ok);
      expect(r.mark & WEFT_MARK_ENFORCED, "the reply is marked enforced").toBe(WEFT_MARK_ENFORCED);
      expect(counters(WEB, DB).packets, "replies are counted").toBe(2n);
      // Same addresses, another port: not a reply, the policy decides.
      expect(testRun(dp.progOverlayIn, ipv4Packet(reply({ dport: 33001 }))).retval, "other port: still denied").toBe(TcAction.shot);
      expect(testRun(dp.progOverlayIn, ipv4Packet(reply({ proto: "udp" }))).retval, "other protocol: still denied").toBe(TcAction.shot);
    });

    it("bpf - an ICMP echo reply matches the request a workload sent by its id (any path), another id does not", () => {
      testRun(dp.progFromWorkload, ipv4Frame({ src: "10.0.1.7", dst: "10.0.0.5", proto: "icmp", icmpId: 4242 }));
      const ok = testRun(dp.progOverlayIn, ipv4Packet({ src: "10.0.0.5", dst: "10.0.1.7", proto: "icmp", icmpType: 0, icmpId: 4242 }));
      expect(ok.retval, "echo reply with the request's id").toBe(TcAction.ok);
      const other = testRun(dp.progOverlayIn, ipv4Packet({ src: "10.0.0.5", dst: "10.0.1.7", proto: "icmp", icmpType: 0, icmpId: 4243 }));
      expect(other.retval, "echo reply with another id").toBe(TcAction.shot);
      const request = testRun(dp.progOverlayIn, ipv4Packet({ src: "10.0.0.5", dst: "10.0.1.7", proto: "icmp", icmpType: 8, icmpId: 4242 }));
      expect(request.retval, "a new echo request from WEB is still up to DB's policy").toBe(TcAction.shot);
    });

    it("bpf - a flow RECEIVED (not sent) creates no entry: a peer cannot open a path back in", () => {
      dp.policy.set({ srcId: WEB, dstId: DB, proto: TCP, port: 9000, portBits: 16 }, { verdict: "allow" });
      try {
        expect(testRun(dp.progOverlayIn, ipv4Packet(web({ dport: 9000 }))).retval).toBe(TcAction.ok);
        expect([...conntrack().keys()].length, "nothing noted on ingress").toBe(0);
      } finally {
        dp.policy.delete({ srcId: WEB, dstId: DB, proto: TCP, port: 9000, portBits: 16 });
      }
    });
  });
});
