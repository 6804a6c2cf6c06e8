/**
 * `OtlpFlowSink`: flow records as OpenTelemetry log records over OTLP/HTTP, with the official SDK
 * (`@opentelemetry/sdk-logs` and `@opentelemetry/exporter-logs-otlp-http`): one log record per
 * identity pair and interval, its fields as `weft.flow.*` attributes, the node as resource
 * attributes (`service.name` weft-agent, `weft.node.id`, `weft.node.name`). Its own module, so an
 * agent without an OTLP endpoint never loads the SDK (~10 MB and ~0.25 s of CPU at start).
 */
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter, type ReadableLogRecord } from "@opentelemetry/sdk-logs";
import type { FlowRecord } from "@weft/protocol";
import { flowAttributes, type FlowNode, type FlowSink } from "./sinks.js";

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

