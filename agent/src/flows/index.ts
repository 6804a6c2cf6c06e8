/**
 * Flow records off the host: per identity pair and interval (start, end, packets, bytes, verdict,
 * drops by reason), from the eBPF counters, to the controller (NATS), to an OTLP collector
 * (OpenTelemetry logs) and to a JSON lines file, each sink behind a bounded queue that drops and
 * counts rather than blocking the agent.
 */
export { FlowExporter, type FlowExporterOptions } from "./exporter.js";
export { flowRecords, boundedForReport, type FlowBaseline } from "./records.js";
export { DropQueue } from "./queue.js";
export { SinkPump, type PumpCounts } from "./pump.js";
export { JsonLinesFlowSink, flowAttributes, type FlowSink } from "./sinks.js";
// OtlpFlowSink is in ./otlp-sink.js, imported only when an OTLP endpoint is configured.
