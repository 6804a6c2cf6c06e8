/**
 * The agent's DNS server, for the host and its workloads (their resolv.conf points here):
 *
 *   <service>.<namespace>.svc.<zone>   the service's VIP (only services this node's identities may call)
 *   <node>.node.<zone>                 a node's overlay address
 *   <workload>.<node>.workload.<zone>  a workload's address
 *
 * A name inside the zone that is none of those is NXDOMAIN; a type other than A under a known name
 * has no data (NOERROR, empty). Everything outside the zone is forwarded to the host's resolvers
 * (upstream, tried in order, 2 s each) and the answer relayed with the client's query id. Queries
 * are answered only for this node's own addresses and its workloads' (`clients`); anyone else
 * (another node over the overlay) is REFUSED. Packets are read and written with `dns-packet`
 * (mafintosh's codec, the one multicast-dns and bonjour use), never by hand. UDP only: the answers
 * are small, and a forwarded answer that comes back truncated is relayed truncated (the client
 * retries over TCP with the upstream itself).
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import dnsPacket, { type Answer, type DecodedPacket, type Question } from "dns-packet";
import type { Logger } from "@weft/protocol";

const RCODE = { noError: 0, formErr: 1, servFail: 2, nxDomain: 3, refused: 5 } as const;
const FORWARD_TIMEOUT_MS = 2000;
const MAX_PENDING = 1024;

export interface DnsNames {
  /** Lower-case DNS zone, without a trailing dot (`weft.internal`). */
  zone: string;
  /** Fully qualified lower-case name (no trailing dot) → IPv4 addresses. */
  records: ReadonlyMap<string, readonly string[]>;
  /** TTL of the answers, seconds. */
  ttl: number;
}

export interface DnsServerOptions {
  host: string;
  port: number;
  /** ip:port (or ip) of the resolvers for names outside the zone. */
  upstream: readonly string[];
  /** Source addresses allowed to query. */
  clients: () => ReadonlySet<string>;
  log: Logger;
}

/** The answer to one question against `names`: undefined when the name is outside the zone (forward it). */
export function answerLocal(q: Question, names: DnsNames): { rcode: number; answers: Answer[] } | undefined {
  const name = q.name.toLowerCase().replace(/\.$/, "");
  if (name !== names.zone && !name.endsWith(`.${names.zone}`)) return undefined;
  const addresses = names.records.get(name);
  if (!addresses) return { rcode: RCODE.nxDomain, answers: [] };
  if (q.type !== "A" && q.type !== ("ANY" as Question["type"])) return { rcode: RCODE.noError, answers: [] };
  return { rcode: RCODE.noError, answers: addresses.map((data) => ({ type: "A" as const, name: q.name, class: "IN" as const, ttl: names.ttl, data })) };
}

export function parseUpstream(text: string): { host: string; port: number } | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return undefined;
  const port = m[2] === undefined ? 53 : Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

/** Nameservers of a resolv.conf text (IPv4 only), as upstreams; `exclude` left out (ourselves). */
export function resolvConfNameservers(text: string, exclude: ReadonlySet<string> = new Set()): string[] {
  return text
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined && parseUpstream(x) !== undefined && !exclude.has(x));
}

interface Pending {
  client: RemoteInfo;
  /** The upstream asked, whose answer alone is accepted. */
  target?: { host: string; port: number };
  clientId: number;
  timer: NodeJS.Timeout;
  tried: number;
  query: DecodedPacket;
}

export class DnsServer {
  #socket: Socket | undefined;
  #upstreamSocket: Socket | undefined;
  #names: DnsNames = { zone: "invalid", records: new Map(), ttl: 30 };
  readonly #pending = new Map<number, Pending>();
  #nextId = Math.floor(Math.random() * 0xffff);
  /** Queries answered locally / forwarded / refused, for tests and metrics. */
  readonly counts = { local: 0, forwarded: 0, refused: 0, failed: 0 };

  constructor(private readonly o: DnsServerOptions) {}

  setNames(names: DnsNames): void {
    this.#names = names;
  }

  /** Binds host:port (UDP). Throws when it cannot. */
  async start(): Promise<void> {
    const socket = createSocket({ type: "udp4", reuseAddr: false });
    socket.on("message", (msg, rinfo) => this.#onQuery(msg, rinfo));
    socket.on("error", (err) => this.o.log.warn({ err }, "dns socket error"));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(this.o.port, this.o.host, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    this.#socket = socket;
    const up = createSocket("udp4");
    up.on("message", (msg, rinfo) => this.#onUpstream(msg, rinfo));
    up.on("error", (err) => this.o.log.warn({ err }, "dns upstream socket error"));
    await new Promise<void>((resolve) => up.bind(0, resolve));
    this.#upstreamSocket = up;
  }

  /** The bound UDP port (useful with port 0). */
  port(): number | undefined {
    return this.#socket?.address().port;
  }

  async close(): Promise<void> {
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    await Promise.all([this.#socket, this.#upstreamSocket].map((s) => (s ? new Promise<void>((r) => s.close(() => r())) : undefined)));
    this.#socket = undefined;
    this.#upstreamSocket = undefined;
  }

  #reply(to: RemoteInfo, query: DecodedPacket, rcode: number, answers: Answer[], authoritative: boolean): void {
    const flags = (authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | (query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | dnsPacket.RECURSION_AVAILABLE | rcode;
    const buf = dnsPacket.encode({ type: "response", id: query.id ?? 0, flags, questions: query.questions ?? [], answers });
    this.#socket?.send(buf, to.port, to.address);
  }

  #onQuery(msg: Buffer, rinfo: RemoteInfo): void {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return; // not DNS: nothing to answer
    }
    if (query.type !== "query") return;
    if (!this.o.clients().has(rinfo.address)) {
      this.counts.refused++;
      return this.#reply(rinfo, query, RCODE.refused, [], false);
    }
    const q = query.questions?.[0];
    if (!q || (query.questions?.length ?? 0) !== 1) return this.#reply(rinfo, query, RCODE.formErr, [], false);
    const local = answerLocal(q, this.#names);
    if (local) {
      this.counts.local++;
      return this.#reply(rinfo, query, local.rcode, local.answers, true);
    }
    this.#forward({ client: rinfo, clientId: query.id ?? 0, timer: undefined as unknown as NodeJS.Timeout, tried: 0, query });
  }

  #forward(p: Pending): void {
    const upstream = this.o.upstream.map(parseUpstream).filter((u) => u !== undefined);
    const target = upstream[p.tried];
    if (!target || !this.#upstreamSocket || this.#pending.size >= MAX_PENDING) {
      this.counts.failed++;
      return this.#reply(p.client, p.query, RCODE.servFail, [], false);
    }
    const id = (this.#nextId = (this.#nextId + 1) & 0xffff);
    p.target = target;
    p.timer = setTimeout(() => {
      this.#pending.delete(id);
      p.tried++;
      this.#forward(p);
    }, FORWARD_TIMEOUT_MS);
    this.#pending.set(id, p);
    const out = dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: p.query.questions ?? [] });
    this.#upstreamSocket.send(out, target.port, target.host);
  }

  #onUpstream(msg: Buffer, from: RemoteInfo): void {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const p = this.#pending.get(id);
    // Only the upstream asked may answer (anyone else guessing an id is ignored).
    if (!p || p.target?.host !== from.address || p.target.port !== from.port) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    this.counts.forwarded++;
    // Relay as it came, with the client's id.
    const out = Buffer.from(msg);
    out.writeUInt16BE(p.clientId, 0);
    this.#socket?.send(out, p.client.port, p.client.address);
  }
}
