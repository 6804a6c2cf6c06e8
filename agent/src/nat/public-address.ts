/**
 * Follows this node's public address when it moves: on a cloud VM with a public endpoint, the
 * cloud's metadata service is read every `intervalMs` (2 s); when it names another address than
 * the node's peer record carries, the agent publishes an EndpointsUpdate on its own subject, and
 * again every few seconds until its peer record says the new endpoint (a lost or throttled update
 * is repeated). The controller records it; peers follow through the peers bucket. No re-enrollment.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects, type EndpointsUpdate } from "@weft/protocol";
import type { Logger } from "pino";
import { readPublicIp } from "../cloud/public-ip.js";

export interface PublicAddressWatcherOptions {
  nc: NatsConnection;
  nodeId: string;
  provider: "aws" | "azure" | "gcp";
  metadataEndpoint: string | undefined;
  /** The port of the public endpoint (the configured one's, else the listen port). */
  port: number;
  /** The public endpoint the node's peer record carries now. */
  current: () => string | undefined;
  log: Logger;
  intervalMs?: number;
  /** Wait before repeating an update the peer record does not show yet. */
  repeatMs?: number;
  read?: typeof readPublicIp;
}

export class PublicAddressWatcher {
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #sent: { endpoint: string; at: number } | undefined;
  #lastError: string | undefined;

  constructor(private readonly o: PublicAddressWatcherOptions) {}

  start(): void {
    this.#timer = setInterval(() => void this.check(), this.o.intervalMs ?? 2000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One look at the metadata service; publishes when the address moved. Never throws. */
  async check(): Promise<void> {
    if (this.#busy || this.o.nc.isClosed()) return;
    this.#busy = true;
    try {
      const ip = await (this.o.read ?? readPublicIp)(this.o.provider, { ...(this.o.metadataEndpoint ? { endpoint: this.o.metadataEndpoint } : {}) });
      this.#lastError = undefined;
      if (ip === undefined) return;
      const want = `${ip}:${this.o.port}`;
      const current = this.o.current();
      // Not known before the first peer set: nothing to compare with yet.
      if (current === undefined) return;
      if (current === want) {
        this.#sent = undefined;
        return;
      }
      const now = Date.now();
      if (this.#sent?.endpoint === want && now - this.#sent.at < (this.o.repeatMs ?? 4000)) return;
      const update: EndpointsUpdate = { version: 1, nodeId: this.o.nodeId, public: want };
      this.o.nc.publish(Subjects.endpoints(this.o.nodeId), JSON.stringify(update));
      if (this.#sent?.endpoint !== want) this.o.log.info({ from: current, to: want }, "this node's public address moved; telling the controller");
      this.#sent = { endpoint: want, at: now };
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.#lastError) this.o.log.warn({ err }, "cannot read this node's public address; keeping the last one");
      this.#lastError = message;
    } finally {
      this.#busy = false;
    }
  }
}
