/**
 * Keeps this node's NATS credential fresh. The user JWT the controller issues expires (24 h by
 * default); at half its lifetime the agent asks for a new one on `weft.v1.node.<id>.credentials`
 * (its own subject, over its authenticated connection), stores it in state.json, and reconnects so
 * the live connection runs on it (the connect reads the current JWT each time). A failed renewal is
 * retried with backoff (1 s doubling up to 5 min) and logged; a refusal (`not_found`: the node was
 * deleted) stops the renewals. When to renew is a pure function of the JWT (renewAt).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { CredentialsReply, Subjects, type CredentialsRequest } from "@weft/protocol";
import { AbortedError, retry, sleep } from "@weft/util";
import type { Logger } from "pino";
import { AgentError } from "../errors.js";
import type { StateHolder } from "../state/holder.js";

/** `iat` and `exp` of a JWT (unix seconds), or undefined when it has none (an old credential). */
export function jwtTimes(jwt: string): { iat: number; exp: number | undefined } | undefined {
  try {
    const claims = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as { iat?: unknown; exp?: unknown };
    if (typeof claims.iat !== "number") return undefined;
    return { iat: claims.iat, exp: typeof claims.exp === "number" ? claims.exp : undefined };
  } catch {
    return undefined;
  }
}

/** When to renew (ms since epoch): half-way between issue and expiry; now for a JWT without expiry. */
export function renewAt(jwt: string, now: number): number {
  const t = jwtTimes(jwt);
  if (!t || t.exp === undefined) return now;
  return (t.iat + (t.exp - t.iat) / 2) * 1000;
}

export interface CredentialRenewerOptions {
  nc: NatsConnection;
  state: StateHolder;
  log: Logger;
  /** Called with the new JWT before the reconnect (the connect function reads it). */
  onRenewed: (userJwt: string) => void;
  /** Request timeout. Default 10 s. */
  timeoutMs?: number;
}

export class CredentialRenewer {
  readonly #stop = new AbortController();

  constructor(private readonly o: CredentialRenewerOptions) {}

  /** Renews at half-life, forever (until stop() or a refusal). */
  start(): void {
    void this.#loop().catch((err: unknown) => {
      if (!(err instanceof AbortedError)) this.o.log.error({ err }, "NATS credential renewal stopped");
    });
  }

  stop(): void {
    this.#stop.abort();
  }

  /** Asks for a new JWT now and switches to it. Throws AgentError (retryable unless refused). */
  async renew(): Promise<string> {
    const { nc, state, log } = this.o;
    const nodeId = state.current.nodeId;
    let reply: CredentialsReply;
    try {
      const msg = await nc.request(Subjects.credentials(nodeId), JSON.stringify({ version: 1 } satisfies CredentialsRequest), { timeout: this.o.timeoutMs ?? 10_000 });
      reply = CredentialsReply.parse(msg.json());
    } catch (err) {
      throw new AgentError("cannot renew the NATS credential", { cause: err, retryable: true });
    }
    if (!reply.ok) throw new AgentError(`the controller refused to renew the NATS credential: ${reply.error.code}: ${reply.error.message}`, { retryable: reply.error.code === "store_unavailable" });
    await state.update({ nats: { ...state.current.nats, userJwt: reply.userJwt } });
    this.o.onRenewed(reply.userJwt);
    log.info({ expiresAt: reply.expiresAt }, "renewed the NATS credential; reconnecting with it");
    await nc.reconnect().catch((err: unknown) => log.warn({ err }, "reconnect after renewal failed; the next reconnect uses the new credential"));
    // reconnect() resolves before the new connection is up; what is published meanwhile can be
    // lost, so wait for a round trip on the new connection.
    await nc.flush().catch((err: unknown) => log.warn({ err }, "no round trip after the reconnect yet"));
    return reply.userJwt;
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    for (;;) {
      const wait = renewAt(this.o.state.current.nats.userJwt, Date.now()) - Date.now();
      if (wait > 0) await sleep(wait, signal);
      await retry(() => this.renew(), {
        initialMs: 1000,
        maxMs: 300_000,
        signal,
        retryIf: (err) => err instanceof AgentError && err.retryable,
        onRetry: (err, delay) => this.o.log.warn({ err, retryInMs: delay }, "NATS credential renewal failed"),
      });
    }
  }
}
