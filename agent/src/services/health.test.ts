import { createServer as createHttp, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { silentLogger, type HealthCheckTask, type HealthResult } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthChecker, probe, type ProbeResult } from "./health.js";

const task = (o: Partial<HealthCheckTask> = {}): HealthCheckTask => ({
  service: "shop/api",
  address: "127.0.0.1",
  port: 1,
  protocol: "tcp",
  intervalMs: 100,
  timeoutMs: 80,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
  ...o,
});

describe("services health", () => {
  let tcp: Server;
  let http: HttpServer;
  let tcpPort = 0;
  let httpPort = 0;
  let silentPort = 0;
  let silent: Server;
  beforeAll(async () => {
    tcp = createServer((s) => s.end());
    http = createHttp((req, res) => res.writeHead(req.url === "/healthz" ? 204 : 503).end());
    // Accepts nothing (a full backlog of 0 is not portable): a listener that never answers HTTP.
    silent = createServer(() => undefined);
    await Promise.all([tcp, http, silent].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()))));
    tcpPort = (tcp.address() as { port: number }).port;
    httpPort = (http.address() as { port: number }).port;
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(() => {
    tcp.close();
    http.close();
    silent.close();
  });

  it("health - tcp: a listener is healthy, a closed port is refused", async () => {
    expect((await probe(task({ port: tcpPort }), undefined)).ok).toBe(true);
    const closed = await probe(task({ port: 1 }), undefined);
    expect([closed.ok, closed.reason]).toEqual([false, "tcp 127.0.0.1:1: ECONNREFUSED"]);
  });

  it("health - http: 2xx/3xx is healthy, other statuses and silence are not", async () => {
    expect((await probe(task({ port: httpPort, protocol: "http", path: "/healthz" }), undefined)).ok).toBe(true);
    const bad = await probe(task({ port: httpPort, protocol: "http", path: "/other" }), undefined);
    expect([bad.ok, bad.reason]).toEqual([false, `http 127.0.0.1:${httpPort}/other: status 503`]);
    const quiet = await probe(task({ port: silentPort, protocol: "http", timeoutMs: 150 }), undefined);
    expect([quiet.ok, quiet.reason]).toEqual([false, "no answer within 150 ms"]);
  });

  it("health - the first result sets the state; then thresholds; every change is reported at once", async () => {
    const script = [true, false, true, false, false, true, true];
    let i = 0;
    const changes: HealthResult[] = [];
    const fake = async (): Promise<ProbeResult> => ({ ok: script[Math.min(i++, script.length - 1)] ?? true, ms: 1, reason: "scripted" });
    const checker = new HealthChecker({ netnsOf: () => undefined, onChange: (r) => changes.push(...r), log: silentLogger, probe: fake });
    checker.setTasks([task({ intervalMs: 100 })]);
    await new Promise((r) => setTimeout(r, 900));
    checker.stop();
    expect(changes.map((c) => c.healthy), "healthy (first), unhealthy after 2 failures, healthy after 2 successes").toEqual([true, false, true]);
    expect(changes[1]?.reason).toBe("scripted");
    expect(checker.snapshot(), "stopped: no checks").toEqual([]);
  });

  it("health - a check of a workload not configured here fails with the reason; changed tasks restart, removed ones stop", async () => {
    const changes: HealthResult[] = [];
    const checker = new HealthChecker({ netnsOf: () => undefined, onChange: (r) => changes.push(...r), log: silentLogger });
    checker.setTasks([task({ workload: "api", port: tcpPort })]);
    await new Promise((r) => setTimeout(r, 150));
    expect(changes[0]).toMatchObject({ healthy: false, reason: "workload api is not configured on this node" });
    checker.setTasks([task({ port: tcpPort })]);
    await new Promise((r) => setTimeout(r, 150));
    expect(checker.snapshot().map((s) => s.healthy), "the changed task restarted: healthy").toEqual([true]);
    checker.setTasks([]);
    expect(checker.snapshot()).toEqual([]);
  });
});
