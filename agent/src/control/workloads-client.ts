/**
 * Asks the controller for this node's workloads: the whole set, declaratively
 * (workloads left out are removed), on `weft.v1.node.<id>.workloads`. The reply
 * carries each workload's stable address in the node's workload prefix and its
 * identity. A refusal throws WorkloadsRefusedError with the controller's message;
 * no answer throws WorkloadsUnavailableError (retry later).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects, WorkloadsReply, type Workload, type WorkloadSpec, type WorkloadsRequest } from "@weft/protocol";
import { AgentError } from "../errors.js";

export const DEFAULT_WORKLOADS_TIMEOUT_MS = 5000;

export interface WorkloadsResult {
  /** The node's workload prefix (e.g. 100.80.3.0/24). */
  workloadPrefix: string;
  /** One per requested spec, same names; addresses stable across requests. */
  workloads: Workload[];
}

/**
 * The controller refused the request; `code` is one of WorkloadsErrorCodes
 * (invalid_request, forbidden, not_found, addresses_exhausted, store_unavailable).
 * Retryable only for store_unavailable: otherwise fix the request or the node's labels.
 */
export class WorkloadsRefusedError extends AgentError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`controller refused the workloads request: ${message}`, { retryable: code === "store_unavailable" });
  }
}

/** No controller answered in time, or the answer was not a WorkloadsReply. Retryable. */
export class WorkloadsUnavailableError extends AgentError {
  constructor(message: string, cause?: unknown) {
    super(message, { cause, retryable: true });
  }
}

/**
 * Send the node's whole workload set and wait for the controller's answer. The
 * connection must be the agent's own (its inbox prefix is `_INBOX_<nodeId>`).
 */
export async function requestWorkloads(nc: NatsConnection, nodeId: string, specs: WorkloadSpec[], timeoutMs = DEFAULT_WORKLOADS_TIMEOUT_MS): Promise<WorkloadsResult> {
  const subject = Subjects.workloads(nodeId);
  const body: WorkloadsRequest = { version: 1, workloads: specs };
  let raw: unknown;
  try {
    const msg = await nc.request(subject, JSON.stringify(body), { timeout: timeoutMs });
    raw = msg.json();
  } catch (err) {
    throw new WorkloadsUnavailableError(`workloads request on ${subject}: no answer from the controller (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const reply = WorkloadsReply.safeParse(raw);
  if (!reply.success) throw new WorkloadsUnavailableError(`workloads request on ${subject}: the controller's answer is not a WorkloadsReply: ${reply.error.issues[0]?.message ?? "invalid"}`);
  if (!reply.data.ok) throw new WorkloadsRefusedError(reply.data.error.code, reply.data.error.message);
  return { workloadPrefix: reply.data.workloadPrefix, workloads: reply.data.workloads };
}
