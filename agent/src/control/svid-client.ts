/**
 * Asks the controller to sign SVIDs for this node: a CSR on `weft.v1.node.<id>.svid.x509`, an
 * audience on `weft.v1.node.<id>.svid.jwt` (request/reply on the agent's own inbox). A refusal
 * throws SvidRefusedError with the controller's code and message; no answer throws
 * SvidUnavailableError (retry later). The private key never travels: only the CSR does.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { JwtSvidReply, Subjects, X509SvidReply, type JwtSvidRequest, type X509SvidRequest } from "@weft/protocol";
import type { z } from "zod";
import { AgentError } from "../errors.js";

export const DEFAULT_SVID_TIMEOUT_MS = 5000;

/** The controller refused: `code` is one of SvidErrorCodes. Retryable only for store_unavailable. */
export class SvidRefusedError extends AgentError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`controller refused the SVID request: ${message}`, { retryable: code === "store_unavailable" });
  }
}

/** No controller answered in time, or the answer did not parse. Retryable. */
export class SvidUnavailableError extends AgentError {
  constructor(message: string, cause?: unknown) {
    super(message, { cause, retryable: true });
  }
}

/** Signs `csrPem` for `spiffeId`: the certificate (PEM) and its expiry. */
export async function requestX509Svid(nc: NatsConnection, nodeId: string, spiffeId: string, csrPem: string, timeoutMs = DEFAULT_SVID_TIMEOUT_MS): Promise<{ certificate: string; expiresAt: string }> {
  const body: X509SvidRequest = { version: 1, spiffeId, csr: csrPem };
  const reply = await ask(nc, Subjects.x509Svid(nodeId), body, X509SvidReply, timeoutMs);
  if (!reply.ok) throw new SvidRefusedError(reply.error.code, reply.error.message);
  return { certificate: reply.certificate, expiresAt: reply.expiresAt };
}

/** A JWT-SVID for `spiffeId` and `audience`. */
export async function requestJwtSvid(nc: NatsConnection, nodeId: string, spiffeId: string, audience: string[], timeoutMs = DEFAULT_SVID_TIMEOUT_MS): Promise<{ token: string; expiresAt: string }> {
  const body: JwtSvidRequest = { version: 1, spiffeId, audience };
  const reply = await ask(nc, Subjects.jwtSvid(nodeId), body, JwtSvidReply, timeoutMs);
  if (!reply.ok) throw new SvidRefusedError(reply.error.code, reply.error.message);
  return { token: reply.token, expiresAt: reply.expiresAt };
}

async function ask<S extends z.ZodType>(nc: NatsConnection, subject: string, body: unknown, schema: S, timeoutMs: number): Promise<z.infer<S>> {
  let raw: unknown;
  try {
    raw = (await nc.request(subject, JSON.stringify(body), { timeout: timeoutMs })).json();
  } catch (err) {
    throw new SvidUnavailableError(`SVID request on ${subject}: no answer from the controller (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new SvidUnavailableError(`SVID request on ${subject}: the controller's answer does not parse: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}
