/**
 * Flow records on the wire: what an agent's eBPF counters saw per identity pair over one interval
 * (start..end), as the agent reports it to the controller on `weft.v1.node.<id>.flows`, writes to
 * its JSON lines file and exports over OTLP; and the controller's aggregate of the last reports
 * (`GET /v1/flows`), which the console shows.
 *
 * Reports are bounded: at most FLOW_REPORT_MAX_RECORDS records (the largest by bytes; the rest are
 * counted in `omitted`) and FLOW_REPORT_MAX_BYTES bytes, one per interval per node.
 */
import { z } from "zod";
import { nodeId } from "./messages.js";

/** Most records one report carries; the agent keeps the largest by bytes. */
export const FLOW_REPORT_MAX_RECORDS = 512;
/** Largest report the controller accepts, in bytes of JSON. */
export const FLOW_REPORT_MAX_BYTES = 256 * 1024;
/**
 * Shortest interval between a node's reports that the controller accepts on average: a token
 * bucket per node, one token every this many milliseconds, holding at most FLOW_REPORT_BURST.
 */
export const FLOW_REPORT_MIN_INTERVAL_MS = 2_000;
/**
 * Reports a node may send closer together than FLOW_REPORT_MIN_INTERVAL_MS before it is refused:
 * an agent reporting every 2 s (the shortest interval it can be set to) arrives early or in pairs
 * whenever its event loop or the network is late once (a report held while disconnected is flushed
 * with the next), and a refused report's counts are lost for good.
 */
export const FLOW_REPORT_BURST = 3;

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** A drop reason as the datapath names it (policyDeny, defaultDeny, malformed, …). */
const dropReason = z.string().regex(/^[a-zA-Z][a-zA-Z0-9]{0,31}$/, "must be a drop reason name like policyDeny");
/** An identity as agents name it: a SPIFFE ID, a reserved name (host, world, …) or `id:<n>` when unknown. */
const identityName = z.string().min(1).max(512);

/** One identity pair over one interval. */
export const FlowRecord = z
  .object({
    source: identityName,
    destination: identityName,
    sourceId: z.number().int().min(0).max(0xffffffff),
    destinationId: z.number().int().min(0).max(0xffffffff),
    /** Interval start and end (ISO 8601). */
    start: z.string().max(40),
    end: z.string().max(40),
    /** Packets seen (passed and dropped) and their bytes. */
    packets: count,
    bytes: count,
    /** "forwarded" when nothing was dropped, "dropped" when everything was, else "mixed". */
    verdict: z.enum(["forwarded", "dropped", "mixed"]),
    /** Dropped packets by reason; empty when none. */
    drops: z.record(dropReason, count),
  })
  .strict();
export type FlowRecord = z.infer<typeof FlowRecord>;

/** Agent → controller on Subjects.flows(nodeId), once per interval. */
export const FlowReport = z
  .object({
    version: z.literal(1),
    nodeId,
    sentAt: z.string().max(40),
    flows: z.array(FlowRecord).max(FLOW_REPORT_MAX_RECORDS),
    /** Records of this interval left out to stay inside the bound. */
    omitted: count,
  })
  .strict();
export type FlowReport = z.infer<typeof FlowReport>;

/** One identity pair in the controller's aggregate: the last interval reported and the total since the controller started. */
export const FlowPairView = z.object({
  source: z.string(),
  destination: z.string(),
  sourceId: z.number().int(),
  destinationId: z.number().int(),
  /** Nodes whose counters saw the pair (enforcement points). */
  nodes: z.array(z.string()),
  last: z.object({ start: z.string(), end: z.string(), packets: z.number(), bytes: z.number(), drops: z.record(z.string(), z.number()) }),
  total: z.object({ packets: z.number(), bytes: z.number(), drops: z.record(z.string(), z.number()) }),
  updatedAt: z.string(),
});
export type FlowPairView = z.infer<typeof FlowPairView>;

/** `GET /v1/flows`. */
export const FlowsView = z.object({
  pairs: z.array(FlowPairView),
  /** Reports accepted, and refused (malformed, too large, too frequent, wrong subject), since the controller started. */
  reports: z.object({ accepted: z.number().int(), refused: z.number().int() }),
});
export type FlowsView = z.infer<typeof FlowsView>;
