/**
 * The agent's flow exporter: every interval it reads the eBPF counters, turns the difference into
 * one record per identity pair (records.ts), hands them to each configured sink's bounded queue
 * (OTLP, JSON lines; pump.ts) and publishes a bounded report to the controller on
 * `weft.v1.node.<id>.flows` (the console's live flows). The first read only sets the baseline.
 * Never throws into the agent: a failed read or publish is logged and the next interval tries again.
 */
import { FLOW_REPORT_MAX_BYTES, type FlowRecord, type FlowReport } from "@weft/protocol";
import type { Logger } from "pino";
import type { FlowCounters } from "../datapath/datapath.js";
import type { IdentityNames } from "../datapath/names.js";
import { SinkPump, type PumpCounts } from "./pump.js";
import { boundedForReport, flowRecords, type FlowBaseline } from "./records.js";
import type { FlowSink } from "./sinks.js";

export interface FlowExporterOptions {
  nodeId: string;
  /** The counters now (the pinned map). */
  read: () => FlowCounters[];
  names: () => IdentityNames;
  intervalMs: number;
  sinks: FlowSink[];
  /** Each sink's queue capacity, in records. */
  queueSize: number;
  /** Sends a report to the controller; false when it could not be sent (not connected). Absent: no reports. */
  report?: (report: FlowReport) => boolean;
  log: Logger;
  now?: () => Date;
}

export class FlowExporter {
  readonly #pumps: SinkPump[];
  #baseline: FlowBaseline | undefined;
  #start: Date;
  #timer: NodeJS.Timeout | undefined;
  #reports = { sent: 0, unsent: 0 };
  readonly #now: () => Date;

  constructor(private readonly o: FlowExporterOptions) {
    this.#pumps = o.sinks.map((s) => new SinkPump(s, o.queueSize, o.log));
    this.#now = o.now ?? (() => new Date());
    this.#start = this.#now();
  }

  start(): void {
    this.tick();
    this.#timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.#timer.unref();
  }

  /** One interval: read, diff, queue for each sink, report. Returns the records (tests). */
  tick(): FlowRecord[] {
    let current: FlowCounters[];
    try {
      current = this.o.read();
    } catch (err) {
      this.o.log.warn({ err }, "cannot read the flow counters; trying again next interval");
      return [];
    }
    const end = this.#now();
    const first = this.#baseline === undefined;
    const { records, next } = flowRecords(this.#baseline ?? new Map(), current, this.o.names(), this.#start, end);
    this.#baseline = next;
    this.#start = end;
    if (first) return [];
    for (const p of this.#pumps) p.offer(records);
    this.#send(records, end);
    return records;
  }

  /** Per sink: records exported, dropped (queue full), failed (collector refused or unreachable), queued. */
  counts(): PumpCounts[] {
    return this.#pumps.map((p) => p.counts());
  }

  get reports(): { sent: number; unsent: number } {
    return { ...this.#reports };
  }

  /** Waits until every sink's queue is empty (tests). */
  async idle(): Promise<void> {
    await Promise.all(this.#pumps.map((p) => p.idle()));
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#pumps.map((p) => p.close()));
  }

  #send(records: FlowRecord[], at: Date): void {
    if (!this.o.report) return;
    let { flows, omitted } = boundedForReport(records);
    let report: FlowReport = { version: 1, nodeId: this.o.nodeId, sentAt: at.toISOString(), flows, omitted };
    // Long SPIFFE IDs can make 512 records too large: halve until it fits.
    while (JSON.stringify(report).length > FLOW_REPORT_MAX_BYTES && flows.length > 0) {
      omitted += flows.length - Math.floor(flows.length / 2);
      flows = flows.slice(0, Math.floor(flows.length / 2));
      report = { ...report, flows, omitted };
    }
    try {
      if (this.o.report(report)) this.#reports.sent++;
      else this.#reports.unsent++;
    } catch (err) {
      this.#reports.unsent++;
      this.o.log.warn({ err }, "cannot send the flow report");
    }
  }
}
