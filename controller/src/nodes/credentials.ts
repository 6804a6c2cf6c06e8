/**
 * NATS credential renewal: an agent asks on `weft.v1.node.<id>.credentials` (its own subject, which
 * only its credential may publish on) and gets a fresh user JWT for the same nkey, with the node's
 * permissions, limits and a new expiry. The nkey comes from the node record, never from the
 * request, so a renewal cannot change who the credential is for; a deleted node gets `not_found`
 * (and its connection is gone anyway: deletion revokes the key). Replies go only to the node's own
 * inbox; malformed requests are counted and logged at most once per interval.
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { CredentialsRequest, NODE_ID_PATTERN, Subjects, type CredentialsReply } from "@weft/protocol";
import type { Logger } from "pino";
import type { MalformedMessages } from "./malformed.js";

/** Queue group, so with several controllers each renewal is answered once. */
const CREDENTIALS_QUEUE = "weft-credentials";

export interface CredentialRenewalOptions {
  /** The node's NATS user key, or undefined when the node does not exist. */
  natsKeyOf: (nodeId: string) => Promise<string | undefined>;
  /** Issues a JWT for the node and key (Authority.issueAgentUser). */
  issue: (nodeId: string, natsPublicKey: string) => Promise<string>;
  malformed: MalformedMessages;
  log: Logger;
}

export function serveCredentialRenewal(nc: NatsConnection, o: CredentialRenewalOptions): Subscription {
  return nc.subscribe(Subjects.allCredentials, {
    queue: CREDENTIALS_QUEUE,
    callback: (err, msg) => {
      if (err) {
        o.log.warn({ err }, "credentials subscription error");
        return;
      }
      void answer(msg, o);
    },
  });
}

async function answer(msg: Msg, o: CredentialRenewalOptions): Promise<void> {
  const nodeId = msg.subject.split(".")[3] ?? "";
  if (!NODE_ID_PATTERN.test(nodeId) || !msg.reply?.startsWith(`${Subjects.inboxPrefix(nodeId)}.`)) {
    o.malformed.note(NODE_ID_PATTERN.test(nodeId) ? nodeId : "unknown", "credentials", "no reply inbox of the node's own");
    return;
  }
  const reply = (r: CredentialsReply) => {
    try {
      msg.respond(JSON.stringify(r));
    } catch (err) {
      o.log.warn({ node: nodeId, err }, "cannot answer a credentials request");
    }
  };
  let body: unknown;
  try {
    body = msg.json();
  } catch {
    body = undefined;
  }
  if (!CredentialsRequest.safeParse(body).success) {
    o.malformed.note(nodeId, "credentials", "not a CredentialsRequest");
    return reply({ ok: false, error: { code: "invalid_request", message: 'want {"version": 1}' } });
  }
  try {
    const key = await o.natsKeyOf(nodeId);
    if (key === undefined) return reply({ ok: false, error: { code: "not_found", message: `node ${nodeId} does not exist` } });
    const userJwt = await o.issue(nodeId, key);
    const exp = (JSON.parse(Buffer.from(userJwt.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: number }).exp;
    o.log.info({ node: nodeId, expiresAt: exp ? new Date(exp * 1000).toISOString() : undefined }, "renewed the node's NATS credential");
    reply({ ok: true, userJwt, expiresAt: new Date((exp ?? 0) * 1000).toISOString() });
  } catch (err) {
    o.log.warn({ node: nodeId, err }, "cannot renew the node's NATS credential");
    reply({ ok: false, error: { code: "store_unavailable", message: "cannot renew now; retry" } });
  }
}
