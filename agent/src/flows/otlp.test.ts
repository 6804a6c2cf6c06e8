/**
 * Flow export off the host, against real receivers: an OTLP/HTTP receiver (a Node HTTP server on
 * 127.0.0.1 that accepts `POST /v1/logs` as the OpenTelemetry collector's OTLP/HTTP receiver does,
 * and decodes the OTLP JSON encoding the official exporter sends) and a JSON lines file. Records
 * arrive with the right identities and counts; a receiver that is down costs counted records,
 * and a full queue drops and counts without slowing the agent's tick.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FlowCounters } from "../datapath/datapath.js";
import { FlowExporter } from "./exporter.js";
import { OtlpFlowSink } from "./otlp-sink.js";
import { JsonLinesFlowSink } from "./sinks.js";

/** OTLP JSON AnyValue → a plain value (stringValue, intValue as a decimal string, …). */
function anyValue(v: Record<string, unknown>): unknown {
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("boolValue" in v) return v.boolValue;
  throw new Error(`unexpected OTLP value ${JSON.stringify(v)}`);
}
const attrs = (list: { key: string; value: Record<string, unknown> }[] = []) => Object.fromEntries(list.map((a) => [a.key, anyValue(a.value)]));

interface Received {
  resource: Record<string, unknown>;
  scope: string;
  records: { time: string; severity: number; body: unknown; attributes: Record<string, unknown> }[];
}

/** A minimal OTLP/HTTP logs receiver: POST /v1/logs (application/json) → 200 {} (ExportLogsServiceResponse). */
function startReceiver(): Promise<{ server: Server; url: string; received: Received[]; contentTypes: string[]; hang: { on: boolean } }> {
  const received: Received[] = [];
  const contentTypes: string[] = [];
  const hang = { on: false };
  const server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      if (hang.on) return; // never answers: the exporter's timeout must fire
      if (req.method !== "POST" || req.url !== "/v1/logs") return void res.writeHead(404).end();
      contentTypes.push(String(req.headers["content-type"]));
      const msg = JSON.parse(body) as { resourceLogs: { resource: { attributes: never[] }; scopeLogs: { scope: { name: string }; logRecords: { timeUnixNano: string; severityNumber: number; body: Record<string, unknown>; attributes: never[] }[] }[] }[] };
      for (const rl of msg.resourceLogs) {
        for (const sl of rl.scopeLogs) {
          received.push({
            resource: attrs(rl.resource.attributes),
            scope: sl.scope.name,
            records: sl.logRecords.map((r) => ({ time: r.timeUnixNano, severity: r.severityNumber, body: anyValue(r.body), attributes: attrs(r.attributes) })),
          });
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received, contentTypes, hang })));
}

const NODE = "n-00000000000000aa";
const WEB = "spiffe://weft.internal/ns/shop/sa/web";
const DB = "spiffe://weft.internal/ns/shop/sa/db";
const names = () => new Map([[300, WEB], [302, DB]]);
const counters = (n: number): FlowCounters[] => [
  { srcId: 300, dstId: 302, packets: BigInt(10 * n), bytes: BigInt(840 * n), drops: { defaultDeny: BigInt(10 * n) } },
  { srcId: 302, dstId: 300, packets: BigInt(3 * n), bytes: BigInt(200 * n), drops: {} },
];
const log = pino({ level: "silent" });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-flows-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("flows/export", () => {
  it("otlp - flow records reach an OTLP/HTTP receiver as OpenTelemetry logs with the identities, counts and verdict; the JSON lines file has the same", async () => {
    const rx = await startReceiver();
    let n = 1;
    const file = join(dir, "flows.jsonl");
    const reports: unknown[] = [];
    const exporter = new FlowExporter({
      nodeId: NODE,
      read: () => counters(n),
      names,
      intervalMs: 60_000,
      sinks: [new OtlpFlowSink({ endpoint: rx.url, node: { nodeId: NODE, name: "aws-1" } }), new JsonLinesFlowSink({ path: file, node: { nodeId: NODE, name: "aws-1" } })],
      queueSize: 100,
      report: (r) => (reports.push(r), true),
      log,
    });
    try {
      expect(exporter.tick(), "the first read sets the baseline").toEqual([]);
      n = 3;
      expect(exporter.tick().length, "records of the second interval").toBe(2);
      await exporter.idle();
      expect(rx.contentTypes, "OTLP/HTTP JSON").toEqual(["application/json"]);
      const got = rx.received.flatMap((r) => r.records);
      expect(rx.received[0]?.resource, "resource attributes").toMatchObject({ "service.name": "weft-agent", "weft.node.id": NODE, "weft.node.name": "aws-1" });
      expect(rx.received[0]?.scope, "instrumentation scope").toBe("weft.flows");
      const denied = got.find((r) => r.attributes["weft.flow.source"] === WEB);
      expect(denied?.attributes, "web → db record").toMatchObject({
        "weft.flow.source": WEB,
        "weft.flow.destination": DB,
        "weft.flow.source_id": 300,
        "weft.flow.destination_id": 302,
        "weft.flow.packets": 20,
        "weft.flow.bytes": 1680,
        "weft.flow.verdict": "dropped",
        "weft.flow.drops.defaultDeny": 20,
      });
      expect(denied?.severity, "a dropped flow is WARN").toBe(13);
      const passed = got.find((r) => r.attributes["weft.flow.source"] === DB);
      expect(passed?.attributes["weft.flow.verdict"], "db → web").toBe("forwarded");
      expect(String(passed?.body), "body").toContain(`${DB} -> ${WEB}: 6 packets`);
      const lines = (await readFile(file, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => [l.node, l.source, l.destination, l.packets, l.drops]), "JSON lines").toEqual([
        [NODE, WEB, DB, 20, { defaultDeny: 20 }],
        [NODE, DB, WEB, 6, {}],
      ]);
      expect(exporter.counts(), "per sink").toEqual([
        { sink: "otlp", exported: 2, dropped: 0, failed: 0, queued: 0 },
        { sink: "file", exported: 2, dropped: 0, failed: 0, queued: 0 },
      ]);
      expect(reports.length, "reports to the controller").toBe(1);
    } finally {
      await exporter.stop();
      rx.server.close();
    }
  });

  it("otlp - a receiver that does not answer costs counted records; a full queue drops and counts; the tick never waits", async () => {
    const rx = await startReceiver();
    rx.hang.on = true;
    let n = 1;
    // 40 pairs per interval, a queue of 50: the first batch is in flight, the rest must drop.
    const many = (k: number): FlowCounters[] => Array.from({ length: 40 }, (_, i) => ({ srcId: 300, dstId: 1000 + i, packets: BigInt(k), bytes: BigInt(100 * k), drops: {} }));
    const exporter = new FlowExporter({ nodeId: NODE, read: () => many(n), names, intervalMs: 60_000, sinks: [new OtlpFlowSink({ endpoint: rx.url, timeoutMs: 1000, node: { nodeId: NODE } })], queueSize: 50, log });
    try {
      exporter.tick();
      const ticks: number[] = [];
      for (n = 2; n <= 5; n++) {
        const t0 = performance.now();
        exporter.tick();
        ticks.push(performance.now() - t0);
      }
      const c = exporter.counts()[0]!;
      expect(c.dropped, `records dropped by the full queue (counts ${JSON.stringify(c)})`).toBe(160 - 40 - 50);
      expect(Math.max(...ticks), `slowest tick (ms) while the receiver hangs: ${ticks.map((t) => t.toFixed(1)).join(", ")}`).toBeLessThan(100);
      await new Promise((r) => setTimeout(r, 1800));
      expect(exporter.counts()[0]!.failed, "the batch the receiver never answered").toBe(40);
      expect(rx.received, "nothing received").toEqual([]);
    } finally {
      await exporter.stop();
      rx.server.closeAllConnections();
      rx.server.close();
    }
  });
});
