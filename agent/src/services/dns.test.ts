import { createSocket, type Socket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeServicesRecord, PeerRecord } from "@weft/protocol";
import { silentLogger } from "@weft/protocol";
import { DnsServer, answerLocal, parseUpstream, resolvConfNameservers } from "./dns.js";
import { dnsNames, workloadResolvConf } from "./names.js";

const record = { zone: "weft.internal", services: [{ name: "api", namespace: "shop", vip: "100.96.0.1" }] } as unknown as NodeServicesRecord;
const peers = [{ name: "aws-1", overlayAddress: "100.64.0.1", workloads: [{ name: "web", address: "100.80.1.1" }] }] as unknown as PeerRecord[];

describe("services dns", () => {
  let upstream: Socket;
  let upstreamPort = 0;
  let server: DnsServer;
  let clients = new Set(["127.0.0.1"]);
  const resolver = () => {
    const r = new Resolver({ timeout: 1500, tries: 1 });
    r.setServers([`127.0.0.1:${server.port()}`]);
    return r;
  };

  beforeAll(async () => {
    // The host's resolver, stood in for by a real UDP DNS server on loopback.
    upstream = createSocket("udp4");
    upstream.on("message", (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const name = q.questions?.[0]?.name ?? "";
      const answers = name === "example.org" ? [{ type: "A" as const, name, ttl: 60, data: "192.0.2.80" }] : [];
      upstream.send(dnsPacket.encode({ type: "response", id: q.id ?? 0, flags: dnsPacket.RECURSION_AVAILABLE | (answers.length ? 0 : 3), questions: q.questions ?? [], answers }), rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => upstream.bind(0, "127.0.0.1", () => r()));
    upstreamPort = upstream.address().port;
    server = new DnsServer({ host: "127.0.0.1", port: 0, upstream: [`127.0.0.1:${upstreamPort}`], clients: () => clients, log: silentLogger });
    await server.start();
    server.setNames(dnsNames(record, peers, "unused.zone"));
  });
  afterAll(async () => {
    await server?.close();
    upstream?.close();
  });

  it("dns - services, nodes and workloads answer with their addresses; unknown names in the zone are NXDOMAIN", async () => {
    const r = resolver();
    expect(await r.resolve4("api.shop.svc.weft.internal")).toEqual(["100.96.0.1"]);
    expect(await r.resolve4("API.Shop.SVC.weft.internal"), "case-insensitive").toEqual(["100.96.0.1"]);
    expect(await r.resolve4("aws-1.node.weft.internal")).toEqual(["100.64.0.1"]);
    expect(await r.resolve4("web.aws-1.workload.weft.internal")).toEqual(["100.80.1.1"]);
    await expect(r.resolve4("nope.shop.svc.weft.internal")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(r.resolve6("api.shop.svc.weft.internal"), "AAAA of a known name: no data").rejects.toMatchObject({ code: "ENODATA" });
  });

  it("dns - names outside the zone are forwarded to the host's resolver and relayed with the client's id", async () => {
    const before = server.counts.forwarded;
    expect(await resolver().resolve4("example.org")).toEqual(["192.0.2.80"]);
    await expect(resolver().resolve4("missing.example.org")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(server.counts.forwarded - before).toBe(2);
  });

  it("dns - a client that is not this node or one of its workloads is refused; garbage is ignored", async () => {
    clients = new Set(["100.64.0.1"]);
    try {
      await expect(resolver().resolve4("api.shop.svc.weft.internal")).rejects.toMatchObject({ code: "EREFUSED" });
    } finally {
      clients = new Set(["127.0.0.1"]);
    }
    const junk = createSocket("udp4");
    await new Promise<void>((r) => junk.send(Buffer.from("not dns at all"), server.port()!, "127.0.0.1", () => r()));
    junk.close();
    expect(await resolver().resolve4("api.shop.svc.weft.internal"), "still serving").toEqual(["100.96.0.1"]);
  });

  it("dns - helpers: local answers, upstream parsing, resolv.conf nameservers, a workload's resolv.conf", () => {
    const names = dnsNames(record, peers, "x");
    expect(answerLocal({ type: "A", name: "example.org" }, names), "outside the zone: forward").toBeUndefined();
    expect(answerLocal({ type: "A", name: "api.shop.svc.weft.internal." }, names)?.answers.map((a) => (a as { data: string }).data)).toEqual(["100.96.0.1"]);
    expect([parseUpstream("10.0.0.2"), parseUpstream("10.0.0.2:5353"), parseUpstream("nope"), parseUpstream("10.0.0.2:70000")]).toEqual([{ host: "10.0.0.2", port: 53 }, { host: "10.0.0.2", port: 5353 }, undefined, undefined]);
    expect(resolvConfNameservers("# c\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 100.64.0.1\nsearch x\n", new Set(["100.64.0.1"]))).toEqual(["10.0.0.2"]);
    expect(dnsNames(null, [], "weft.internal").zone, "no record yet: the fallback zone").toBe("weft.internal");
    const conf = workloadResolvConf({ nameserver: "100.64.0.1", namespace: "shop", zone: "weft.internal", workload: "web" });
    expect(conf).toContain("nameserver 100.64.0.1\nsearch shop.svc.weft.internal svc.weft.internal weft.internal\n");
    expect(conf.startsWith("# written by the weft agent"), "marked as ours (removeResolvConf checks it)").toBe(true);
  });
});
