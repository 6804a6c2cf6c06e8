/**
 * The path probe: a UDP echo between overlay addresses, so it travels inside the WireGuard tunnel
 * over whatever path WireGuard uses for that peer (direct or a relay). Every agent answers on
 * `<overlay address>:51821`; a ping is 16 bytes (`WEFTPING` + an 8-byte nonce) and the answer is
 * the same with `WEFTPONG`. The round trip is the tunnel's RTT; an answer during a hole-punching
 * probe proves the candidate path works both ways.
 *
 * Only pings from the overlay's ranges are answered (anything else arriving on the overlay address
 * came through WireGuard's allowed IPs anyway), only 16-byte datagrams are read, and answers are
 * bounded per second. eBPF policy applies to the probe like to any overlay traffic: a policy that
 * default-denies node identities must allow udp/51821 between nodes, or paths show no RTT and
 * punched paths are not taken.
 */
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { PATH_PROBE_PORT, cidrContains, parseCidr, parseIpv4 } from "@weft/protocol";
import type { Logger } from "pino";

const PING = Buffer.from("WEFTPING");
const PONG = Buffer.from("WEFTPONG");
const SIZE = 16;
/** Answers per second; more pings than this are dropped (a probe needs a handful). */
const MAX_ANSWERS_PER_SECOND = 200;
/** Nonces drawn from the CSPRNG at once (an RTT round pings every peer; one call per ping cost more than the send). */
const NONCES_PER_DRAW = 128;

/** The message kind of a datagram, or undefined when it is not a probe message. Pure. */
export function probeKind(msg: Buffer): "ping" | "pong" | undefined {
  if (msg.length !== SIZE) return undefined;
  if (msg.subarray(0, 8).equals(PING)) return "ping";
  if (msg.subarray(0, 8).equals(PONG)) return "pong";
  return undefined;
}

export interface PathProbeOptions {
  /** This node's overlay address: the probe listens there (the interface must be up). */
  address: string;
  /** The overlay's ranges: pings from anywhere else are not answered. */
  overlayRanges: readonly string[];
  port?: number;
  log: Logger;
}

export class PathProbe {
  #socket: Socket | undefined;
  readonly #waiting = new Map<string, (rttMs: number) => void>();
  readonly #ranges;
  #second = 0;
  #answered = 0;
  #nonces = Buffer.alloc(0);

  constructor(private readonly o: PathProbeOptions) {
    this.#ranges = o.overlayRanges.flatMap((r) => parseCidr(r) ?? []);
  }

  get port(): number {
    return this.o.port ?? PATH_PROBE_PORT;
  }

  /** Binds the echo socket on the overlay address. */
  async start(): Promise<void> {
    const socket = createSocket({ type: "udp4" });
    socket.on("message", (msg, rinfo) => this.#onMessage(socket, msg, rinfo.address, rinfo.port));
    socket.on("error", (err) => this.o.log.warn({ err }, "path probe socket error"));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(this.port, this.o.address, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    this.#socket = socket;
  }

  stop(): void {
    this.#socket?.close();
    this.#socket = undefined;
    for (const done of this.#waiting.values()) done(Number.NaN);
    this.#waiting.clear();
  }

  /** One echo to a peer's overlay address: the round trip in ms, or undefined without an answer within `timeoutMs`. */
  ping(address: string, timeoutMs: number): Promise<number | undefined> {
    const socket = this.#socket;
    if (!socket) return Promise.resolve(undefined);
    if (this.#nonces.length < 8) this.#nonces = randomBytes(8 * NONCES_PER_DRAW);
    const nonce = this.#nonces.subarray(0, 8);
    this.#nonces = this.#nonces.subarray(8);
    const key = nonce.toString("hex");
    const started = process.hrtime.bigint();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        resolve(undefined);
      }, timeoutMs);
      this.#waiting.set(key, () => {
        clearTimeout(timer);
        this.#waiting.delete(key);
        resolve(Number(process.hrtime.bigint() - started) / 1e6);
      });
      socket.send(Buffer.concat([PING, nonce]), this.port, address, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.#waiting.delete(key);
        resolve(undefined);
      });
    });
  }

  #onMessage(socket: Socket, msg: Buffer, from: string, port: number): void {
    const kind = probeKind(msg);
    if (kind === "pong") {
      this.#waiting.get(msg.subarray(8).toString("hex"))?.(0);
      return;
    }
    if (kind !== "ping") return;
    const ip = parseIpv4(from);
    if (ip === undefined || !this.#ranges.some((r) => cidrContains(r, ip))) return;
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#answered = 0;
    }
    if (++this.#answered > MAX_ANSWERS_PER_SECOND) return;
    socket.send(Buffer.concat([PONG, msg.subarray(8)]), port, from);
  }
}
