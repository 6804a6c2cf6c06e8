/**
 * Flow reports from agents (`weft.v1.node.<id>.flows`, one per interval per node) aggregated per
 * identity pair: the last interval each pair was seen in and its total since this controller
 * started, with the nodes whose counters saw it. Kept in memory, bounded: a report larger than
 * FLOW_REPORT_MAX_BYTES, malformed, naming another node than its subject, or past the node's rate
 * (a token bucket: one report per FLOW_REPORT_MIN_INTERVAL_MS on average, FLOW_REPORT_BURST at
 * once) is refused (counted, logged at debug);
 * at most `maxPairs` pairs are kept, the least recently seen dropped first.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { FLOW_REPORT_BURST, FLOW_REPORT_MAX_BYTES, FLOW_REPORT_MIN_INTERVAL_MS, FlowReport, Subjects, nodeIdFromSubject, type FlowPairView, type FlowsView } from "@weft/protocol";
import type { Logger } from "pino";

export interface FlowCollectorOptions {
  log: Logger;
  /** Most identity pairs kept. Default 5000. */
  maxPairs?: number;
  now?: () => number;
  /** Told of each report: accepted or refused (metrics). */
  onReport?: (result: "accepted" | "refused") => void;
  /** Told after an accepted report changed the aggregate (the console's live stream). */
  onChange?: () => void;
}

interface Pair {
  view: FlowPairView;
  nodes: Set<string>;
  seenAt: number;
}

function addDrops(into: Record<string, number>, from: Record<string, number>): void {
  for (const [reason, n] of Object.entries(from)) into[reason] = (into[reason] ?? 0) + n;
}

export class FlowCollector {
  readonly #pairs = new Map<string, Pair>();
  /** Per node: report tokens left and when they were counted. */
  readonly #tokens = new Map<string, { tokens: number; at: number }>();
  readonly #maxPairs: number;
  readonly #now: () => number;
  #accepted = 0;
  #refused = 0;

  constructor(private readonly o: FlowCollectorOptions) {
    this.#maxPairs = o.maxPairs ?? 5000;
    this.#now = o.now ?? Date.now;
  }

  /** Subscribes to every node's reports. */
  serve(nc: NatsConnection): Subscription {
    return nc.subscribe(Subjects.allFlows, {
      callback: (err, msg) => {
        if (err) return void this.o.log.warn({ err }, "flow report subscription error");
        this.accept(msg.subject, msg.data);
      },
    });
  }

  /** One report as it came off the wire; false when refused. */
  accept(subject: string, data: Uint8Array): boolean {
    const refuse = (why: string) => {
      this.#refused++;
      this.o.onReport?.("refused");
      this.o.log.debug({ subject, why }, "flow report refused");
      return false;
    };
    const node = nodeIdFromSubject(subject);
    if (!node) return refuse("not a node's flows subject");
    if (data.length > FLOW_REPORT_MAX_BYTES) return refuse(`larger than ${FLOW_REPORT_MAX_BYTES} bytes`);
    let parsed: ReturnType<typeof FlowReport.safeParse>;
    try {
      parsed = FlowReport.safeParse(JSON.parse(new TextDecoder().decode(data)));
    } catch {
      return refuse("not JSON");
    }
    if (!parsed.success) return refuse(`malformed: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    if (parsed.data.nodeId !== node) return refuse("names another node than its subject");
    const now = this.#now();
    if (!this.#takeToken(node, now)) return refuse(`more than one report per ${FLOW_REPORT_MIN_INTERVAL_MS} ms from this node`);
    for (const f of parsed.data.flows) {
      const k = `${f.sourceId}/${f.destinationId}`;
      const pair = this.#pairs.get(k) ?? {
        view: {
          source: f.source,
          destination: f.destination,
          sourceId: f.sourceId,
          destinationId: f.destinationId,
          nodes: [],
          last: { start: f.start, end: f.end, packets: 0, bytes: 0, drops: {} },
          total: { packets: 0, bytes: 0, drops: {} },
          updatedAt: "",
        },
        nodes: new Set<string>(),
        seenAt: now,
      };
      // Reports of several nodes for one interval add up; a newer interval replaces the last one.
      if (pair.view.last.end !== f.end) pair.view.last = { start: f.start, end: f.end, packets: 0, bytes: 0, drops: {} };
      pair.view.last.packets += f.packets;
      pair.view.last.bytes += f.bytes;
      addDrops(pair.view.last.drops, f.drops);
      pair.view.total.packets += f.packets;
      pair.view.total.bytes += f.bytes;
      addDrops(pair.view.total.drops, f.drops);
      pair.view.source = f.source;
      pair.view.destination = f.destination;
      pair.nodes.add(node);
      pair.view.nodes = [...pair.nodes].sort();
      pair.view.updatedAt = new Date(now).toISOString();
      pair.seenAt = now;
      this.#pairs.delete(k);
      this.#pairs.set(k, pair); // most recently seen last
    }
    while (this.#pairs.size > this.#maxPairs) {
      const oldest = this.#pairs.keys().next().value;
      if (oldest === undefined) break;
      this.#pairs.delete(oldest);
    }
    this.#accepted++;
    this.o.onReport?.("accepted");
    if (parsed.data.flows.length > 0) this.o.onChange?.();
    return true;
  }

  /** Forget a node (deleted): its rate limit; the pairs it reported stay until they age out. */
  forget(nodeId: string): void {
    this.#tokens.delete(nodeId);
  }

  /** Takes one of the node's report tokens; false when it has none left. */
  #takeToken(node: string, now: number): boolean {
    const b = this.#tokens.get(node);
    const tokens = b === undefined ? FLOW_REPORT_BURST : Math.min(FLOW_REPORT_BURST, b.tokens + Math.max(0, now - b.at) / FLOW_REPORT_MIN_INTERVAL_MS);
    if (tokens < 1) {
      this.#tokens.set(node, { tokens, at: now });
      return false;
    }
    this.#tokens.set(node, { tokens: tokens - 1, at: now });
    return true;
  }

  view(): FlowsView {
    const pairs = [...this.#pairs.values()].map((p) => p.view).sort((a, b) => b.total.bytes - a.total.bytes || a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination));
    return { pairs, reports: { accepted: this.#accepted, refused: this.#refused } };
  }
}
