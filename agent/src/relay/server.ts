/**
 * The relay: on a node labelled `weft:relay` (with a public endpoint), forwards the WireGuard
 * datagrams of pairs of nodes that cannot reach each other directly. Each session (from this
 * node's path plan) is two UDP ports, one per side: a side sends to its own port, and the relay
 * sends what it gets out of the other port to the address it last heard the other side from.
 * The two ends never learn each other's address through the relay, and WireGuard never notices:
 * to each side the relay's port *is* the peer's endpoint (sessions, roaming, keepalives unchanged).
 *
 * The traffic stays end-to-end WireGuard: the relay forwards only datagrams shaped like WireGuard
 * messages (wire.ts) and cannot decrypt them. A side's address is learned from any such datagram
 * on its port; the ports are told only to the two nodes (each its own), so taking a session over
 * means guessing a port and spoofing WireGuard, and achieves a denial of service at most.
 *
 * Why not TURN (coturn): a TURN client must wrap every datagram (ChannelData) and keep an
 * allocation alive, which wireguard-go cannot do; each end would need a userspace proxy in its
 * data path. This relay keeps both ends unmodified and costs one userspace hop at the relay.
 */
import { createSocket, type Socket } from "node:dgram";
import type { RelaySession } from "@weft/protocol";
import type { Logger } from "pino";
import { wireGuardMessage } from "./wire.js";

interface Side {
  address: string;
  port: number;
}

interface Running {
  session: RelaySession;
  sockets: [Socket, Socket];
  heard: [Side | undefined, Side | undefined];
  packets: number;
  bytes: number;
  dropped: number;
}

export interface RelayStatus {
  sessions: number;
  /** Sessions whose ports could not be opened (in use?). */
  failed: { id: string; error: string }[];
  packets: number;
  bytes: number;
  /** Datagrams not forwarded: not WireGuard, or the other side not heard from yet. */
  dropped: number;
}

export class RelayServer {
  readonly #running = new Map<string, Running>();
  readonly #failed = new Map<string, string>();
  #closed = { packets: 0, bytes: 0, dropped: 0 };

  constructor(
    private readonly log: Logger,
    /** Address the relay ports bind to (default every address). */
    private readonly bindAddress = "0.0.0.0",
  ) {}

  /** Opens the sessions that are new, closes those that are gone; a session whose ports changed is reopened. */
  async apply(sessions: readonly RelaySession[]): Promise<void> {
    const want = new Map(sessions.map((s) => [s.id, s]));
    for (const [id, r] of this.#running) {
      const w = want.get(id);
      if (w && w.ports[0] === r.session.ports[0] && w.ports[1] === r.session.ports[1] && w.nodes[0] === r.session.nodes[0] && w.nodes[1] === r.session.nodes[1]) continue;
      this.#close(r);
      this.#running.delete(id);
      this.log.info({ session: id }, "relay session closed");
    }
    for (const id of [...this.#failed.keys()]) if (!want.has(id)) this.#failed.delete(id);
    for (const s of want.values()) {
      if (this.#running.has(s.id)) continue;
      try {
        this.#running.set(s.id, await this.#open(s));
        this.#failed.delete(s.id);
        this.log.info({ session: s.id, ports: s.ports, nodes: s.nodes }, "relay session open");
      } catch (err) {
        this.#failed.set(s.id, (err as Error).message);
        this.log.error({ session: s.id, ports: s.ports, err }, "cannot open the relay session's ports; the pair has no relay until they are free");
      }
    }
  }

  status(): RelayStatus {
    const all = [...this.#running.values()];
    return {
      sessions: all.length,
      failed: [...this.#failed].map(([id, error]) => ({ id, error })),
      packets: this.#closed.packets + all.reduce((n, r) => n + r.packets, 0),
      bytes: this.#closed.bytes + all.reduce((n, r) => n + r.bytes, 0),
      dropped: this.#closed.dropped + all.reduce((n, r) => n + r.dropped, 0),
    };
  }

  close(): void {
    for (const r of this.#running.values()) this.#close(r);
    this.#running.clear();
  }

  async #open(session: RelaySession): Promise<Running> {
    const sockets: Socket[] = [];
    try {
      for (const port of session.ports) sockets.push(await bind(port, this.bindAddress));
    } catch (err) {
      for (const s of sockets) s.close();
      throw err;
    }
    const r: Running = { session, sockets: sockets as [Socket, Socket], heard: [undefined, undefined], packets: 0, bytes: 0, dropped: 0 };
    r.sockets.forEach((socket, side) => {
      socket.on("message", (msg, from) => {
        if (!wireGuardMessage(msg)) {
          r.dropped++;
          return;
        }
        const was = r.heard[side];
        if (was?.address !== from.address || was.port !== from.port) r.heard[side] = { address: from.address, port: from.port };
        const to = r.heard[1 - side];
        if (!to) {
          r.dropped++;
          return;
        }
        r.packets++;
        r.bytes += msg.length;
        r.sockets[1 - side]!.send(msg, to.port, to.address);
      });
      socket.on("error", (err) => this.log.warn({ session: session.id, err }, "relay socket error"));
    });
    return r;
  }

  #close(r: Running): void {
    for (const s of r.sockets) s.close();
    this.#closed.packets += r.packets;
    this.#closed.bytes += r.bytes;
    this.#closed.dropped += r.dropped;
  }
}

function bind(port: number, address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: "udp4" });
    socket.once("error", reject);
    socket.bind(port, address, () => {
      socket.off("error", reject);
      // Relayed bulk traffic: bigger buffers than the default keep bursts from being dropped.
      try {
        socket.setRecvBufferSize(4 * 1024 * 1024);
        socket.setSendBufferSize(4 * 1024 * 1024);
      } catch {
        // the kernel's limits apply
      }
      resolve(socket);
    });
  });
}
