/**
 * Where flow records go off the host, each a `FlowSink` fed by its own bounded queue (pump.ts):
 * - `OtlpFlowSink` (otlp-sink.ts, loaded only when an OTLP endpoint is configured): OpenTelemetry
 *   log records over OTLP/HTTP;
 * - `JsonLinesFlowSink`: one JSON object per line appended to a file (mode 0640), rotated to
 *   `<file>.1` past `maxBytes`.
 */
import { appendFile, rename, stat } from "node:fs/promises";
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
