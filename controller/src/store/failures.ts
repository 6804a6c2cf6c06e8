/**
 * How a failed store call ended, as the callers need to know it: certainly not processed (retry
 * it), maybe processed (a timeout or a lost connection: retry only what is idempotent), or failed
 * for good; and a sentence saying what it means for an operator.
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

export type Failure = "not-processed" | "ambiguous" | "permanent";

/**
 * A server answered that JetStream is not enabled for the account: a server that has just started
 * says so until it has loaded the account (a cluster an operator has just started, then restores
 * into or starts a controller on); one whose configuration lacks JetStream for it keeps saying so.
 */
function jetStreamNotEnabled(e: Error): boolean {
  return e instanceof JetStreamApiError && e.code === JetStreamApiCodes.JetStreamNotEnabledForAccount;
}

/** How a store call failed: certainly not processed, maybe processed (timeout, connection lost), or for good. */
export function classifyStoreError(err: unknown): Failure {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (/no responders|temporarily unavailable|\b503\b/i.test(e.message) || (e instanceof JetStreamApiError && e.code === 10008) || jetStreamNotEnabled(e)) return "not-processed";
  }
  for (let e = err; e instanceof Error; e = e.cause) {
    if (/timeout|timed out|disconnect|connection (closed|lost)|closed connection|reconnect/i.test(e.message)) return "ambiguous";
  }
  return "permanent";
}

/** A sentence saying what a store failure means for an operator. */
export function explainStoreError(err: unknown): string {
  let root = err;
  while (root instanceof Error && root.cause instanceof Error) root = root.cause;
  const detail = root instanceof Error ? root.message : String(root);
  if (root instanceof Error && jetStreamNotEnabled(root)) return `NATS JetStream is not enabled for the controller's account (${detail}): a server that has just started enables it once it has loaded the account; if this lasts, that server's configuration lacks JetStream for it (weft nats-config)`;
  switch (classifyStoreError(err)) {
    case "not-processed":
      return `NATS JetStream is unavailable (${detail}): no quorum — is a majority of the NATS cluster's servers up?`;
    case "ambiguous":
      return `NATS JetStream did not answer (${detail}): no quorum, or the NATS server is unreachable; retry`;
    default:
      return detail;
  }
}
