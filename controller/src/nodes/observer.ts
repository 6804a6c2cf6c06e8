/**
 * Tells Liveness when this controller cannot see heartbeats: its NATS connection is down (status
 * events) or does not answer a round trip within `probeTimeoutMs` (a frozen or partitioned
 * server keeps the TCP connection open), and ticks it every second so a frozen process is noticed.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Liveness } from "./liveness.js";

export interface ObserverOptions {
  liveness: Pick<Liveness, "blindFrom" | "sight" | "tick" | "blind">;
  log: Logger;
  /** Between round-trip probes. Default 1000 ms. */
  probeMs?: number;
  /** A round trip slower than this is blindness. Default 2000 ms. */
  probeTimeoutMs?: number;
}

export interface Observer {
  stop(): void;
}

export function observeControlPlane(nc: NatsConnection, o: ObserverOptions): Observer {
  const probeMs = o.probeMs ?? 1000;
  const timeoutMs = o.probeTimeoutMs ?? 2000;
  let stopped = false;
  let probing = false;
  let lastGood = Date.now();
  const blind = (why: string, since: number) => {
    if (!o.liveness.blind) o.log.warn({ why }, "cannot see agents' heartbeats: liveness is frozen until the control plane answers again");
    o.liveness.blindFrom(since);
  };
  const probe = async () => {
    if (probing || stopped) return;
    probing = true;
    const started = Date.now();
    try {
      await Promise.race([nc.rtt(), new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), timeoutMs).unref())]);
      if (o.liveness.blind) o.log.info("the control plane answers again: nodes get a full offline period to report before any is judged offline");
      o.liveness.sight();
      lastGood = Date.now();
    } catch {
      if (!stopped) blind(`NATS round trip failed or took over ${timeoutMs} ms`, Math.min(lastGood, started));
    } finally {
      probing = false;
    }
  };
  const timer = setInterval(() => {
    o.liveness.tick();
    void probe();
  }, probeMs);
  timer.unref();
  void (async () => {
    for await (const s of nc.status()) {
      if (stopped) return;
      if (s.type === "disconnect") blind("disconnected from NATS", Date.now());
      else if (s.type === "reconnect") void probe();
    }
  })().catch(() => {});
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
