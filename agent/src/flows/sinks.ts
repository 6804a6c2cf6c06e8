/**
 * Where flow records go off the host, each a `FlowSink` fed by its own bounded queue (pump.ts):
 * - `OtlpFlowSink`: OpenTelemetry log records over OTLP/HTTP, with the official SDK
 *   (`@opentelemetry/sdk-logs` and `@opentelemetry/exporter-logs-otlp-http`): one log record per
 *   identity pair and interval, its fields as `weft.flow.*` attributes, the node as resource
 *   attributes (`service.name` weft-agent, `weft.node.id`, `weft.node.name`).
 * - `JsonLinesFlowSink`: one JSON object per line appended to a file (mode 0640), rotated to
 *   `<file>.1` past `maxBytes`.
 */
import { appendFile, rename, stat } from "node:fs/promises";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter, type ReadableLogRecord } from "@opentelemetry/sdk-logs";
import type { FlowRecord } from "@weft/protocol";

export interface FlowSink {
  /** "otlp" or "file": the metrics' label. */
  readonly name: string;
  /** Delivers one batch, or throws. */
  export(records: readonly FlowRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface FlowNode {
  nodeId: string;
  name?: string | undefined;
}

/** The log record attributes of one flow record. */
export function flowAttributes(r: FlowRecord): Record<string, string | number> {
  const out: Record<string, string | number> = {
    "weft.flow.source": r.source,
    "weft.flow.destination": r.destination,
    "weft.flow.source_id": r.sourceId,
    "weft.flow.destination_id": r.destinationId,
    "weft.flow.start": r.start,
    "weft.flow.end": r.end,
    "weft.flow.packets": r.packets,
    "weft.flow.bytes": r.bytes,
    "weft.flow.verdict": r.verdict,
  };
  for (const [reason, n] of Object.entries(r.drops)) out[`weft.flow.drops.${reason}`] = n;
  return out;
}

/** Counts what the SDK's exporter reports, so a batch that did not reach the collector is known. */
class CountingExporter implements LogRecordExporter {
  exported = 0;
  lastError: Error | undefined;

  constructor(private readonly inner: LogRecordExporter) {}

  export(logs: ReadableLogRecord[], done: Parameters<LogRecordExporter["export"]>[1]): void {
    this.inner.export(logs, (result) => {
      if (result.code === 0) this.exported += logs.length;
      else this.lastError = result.error ?? new Error("export failed");
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export interface OtlpSinkOptions {
  /** Base URL of the collector's OTLP/HTTP receiver (http://collector:4318); logs go to <endpoint>/v1/logs. */
  endpoint: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  node: FlowNode;
}

export class OtlpFlowSink implements FlowSink {
  readonly name = "otlp";
  readonly #provider: LoggerProvider;
  readonly #exporter: CountingExporter;
  readonly #logger;

  constructor(o: OtlpSinkOptions) {
    const timeoutMillis = o.timeoutMs ?? 10_000;
    this.#exporter = new CountingExporter(new OTLPLogExporter({ url: `${o.endpoint.replace(/\/+$/, "")}/v1/logs`, headers: o.headers ?? {}, timeoutMillis }));
    this.#provider = new LoggerProvider({
      resource: resourceFromAttributes({ "service.name": "weft-agent", "weft.node.id": o.node.nodeId, ...(o.node.name ? { "weft.node.name": o.node.name, "host.name": o.node.name } : {}) }),
      // The pump hands at most one batch at a time and flushes it, so this queue never overflows.
      processors: [new BatchLogRecordProcessor({ exporter: this.#exporter, maxQueueSize: 4096, maxExportBatchSize: 512, scheduledDelayMillis: 1000, exportTimeoutMillis: timeoutMillis })],
    });
    this.#logger = this.#provider.getLogger("weft.flows");
  }

  async export(records: readonly FlowRecord[]): Promise<void> {
    const before = this.#exporter.exported;
    this.#exporter.lastError = undefined as Error | undefined;
    for (const r of records) {
      const at = new Date(r.end);
      this.#logger.emit({
        timestamp: at,
        observedTimestamp: new Date(),
        severityNumber: r.verdict === "forwarded" ? SeverityNumber.INFO : SeverityNumber.WARN,
        severityText: r.verdict === "forwarded" ? "INFO" : "WARN",
        eventName: "weft.flow",
        body: `${r.source} -> ${r.destination}: ${r.packets} packets, ${r.bytes} bytes, ${r.verdict}`,
        attributes: flowAttributes(r),
      });
    }
    await this.#provider.forceFlush();
    if (this.#exporter.exported - before < records.length) {
      const cause: Error | undefined = this.#exporter.lastError;
      throw new Error(`OTLP export of ${records.length} flow records failed: ${cause?.message ?? "no answer in time"}`, { cause });
    }
  }

  close(): Promise<void> {
    return this.#provider.shutdown();
  }
}

export interface JsonLinesSinkOptions {
  path: string;
  node: FlowNode;
  /** Rotate to `<path>.1` past this size. Default 100 MiB. */
  maxBytes?: number;
}

export class JsonLinesFlowSink implements FlowSink {
  readonly name = "file";
  #size: number | undefined;

  constructor(private readonly o: JsonLinesSinkOptions) {}

  async export(records: readonly FlowRecord[]): Promise<void> {
    const text = records.map((r) => `${JSON.stringify({ node: this.o.node.nodeId, ...(this.o.node.name ? { nodeName: this.o.node.name } : {}), ...r })}\n`).join("");
    this.#size ??= await stat(this.o.path).then((s) => s.size, () => 0);
    if (this.#size > 0 && this.#size + text.length > (this.o.maxBytes ?? 100 * 1024 * 1024)) {
      await rename(this.o.path, `${this.o.path}.1`);
      this.#size = 0;
    }
    await appendFile(this.o.path, text, { mode: 0o640 });
    this.#size += Buffer.byteLength(text);
  }

  async close(): Promise<void> {}
}
