/**
 * Applying the authority to running servers: a system-account connection pushes
 * the current WEFT account JWT, with its revocation list, on
 * `$SYS.REQ.ACCOUNT.<WEFT>.CLAIMS.UPDATE`. nats-server 2.9 takes it with a `full`
 * resolver (stored in its JWT directory) or a MEMORY resolver (held until the server
 * restarts), and closes every client connection whose user JWT the new list revokes.
 *
 * NatsAccess is what the controller holds: `revokeAgent(key)` records the revocation
 * in the authority (durable), then pushes; if no server answers, it keeps pushing in
 * the background, and it pushes again after every reconnect (a MEMORY-resolver server
 * that restarted has forgotten the list).
 */
import {
  connect,
  jwtAuthenticator,
  NoRespondersError,
  PermissionViolationError,
  TimeoutError,
  type NatsConnection,
} from "@nats-io/transport-node";
import { Backoff, sleep } from "@weft/util";
import type { Authority, Revocation } from "./authority.js";
import { CONTROLLER_PING, NO_ASYNC_TRACES, dialTimeout, natsTlsOptions } from "./connect.js";
import { claimsUpdateSubject, SYSTEM_USER_INBOX_PREFIX } from "./jwts.js";
import { ClaimsUpdateRejectedError, ClaimsUpdateUnavailableError, NatsLayerError } from "./errors.js";
import { silentLogger, type Logger } from "./logger.js";

const DEFAULT_TIMEOUT_MS = 5_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/** A server's acknowledgement of a claims update. */
export interface ClaimsUpdateAck {
  account: string;
  /** Name of the server that answered (the first one, on a cluster). */
  server: string | undefined;
  /** The server's words, e.g. "jwt updated". */
  message: string;
}

export interface PushAccountClaimsOptions {
  /** How long to wait for a server's reply. Default 5 s. */
  timeoutMs?: number;
}

/**
 * Sends `authority.accountJwt` (as it is now) to the servers over a system-account
 * connection and waits for the first reply. Throws ClaimsUpdateRejectedError (the
 * server refused it, or the user may not publish it) or ClaimsUpdateUnavailableError
 * (no responders, timeout, connection closed; retryable).
 *
 * A 200 reply means the server took the JWT; nats-server 2.9 replies 200 before it
 * checks who signed the JWT, which is why only operator-signed JWTs from the
 * authority are ever sent.
 */
export async function pushAccountClaims(
  sys: NatsConnection,
  authority: Authority,
  opts: PushAccountClaimsOptions = {},
): Promise<ClaimsUpdateAck> {
  const account = authority.accountPublicKey;
  const subject = claimsUpdateSubject(account);
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let text: string;
  try {
    const reply = await sys.request(subject, new TextEncoder().encode(authority.accountJwt), { timeout });
    text = reply.string();
  } catch (err) {
    throw requestFailure(account, subject, timeout, err);
  }
  return parseReply(account, text);
}

function requestFailure(account: string, subject: string, timeoutMs: number, err: unknown): NatsLayerError {
  if (findCause(err, PermissionViolationError)) {
    return new ClaimsUpdateRejectedError(
      account,
      `the connection's user may not publish on ${subject}; connect with a user from authority.issueSystemUser()`,
      { cause: err },
    );
  }
  if (findCause(err, NoRespondersError)) {
    return new ClaimsUpdateUnavailableError(
      account,
      `no server answered on ${subject}: the server is restarting, or its config lacks Weft's system_account ` +
        `and resolver (use authority.serverConfigFragment())`,
      { cause: err },
    );
  }
  if (findCause(err, TimeoutError)) {
    return new ClaimsUpdateUnavailableError(account, `no reply within ${timeoutMs} ms`, { cause: err });
  }
  return new ClaimsUpdateUnavailableError(account, `request failed: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

interface UpdateReply {
  data?: { account?: string; code?: number; message?: string };
  error?: { account?: string; code?: number; description?: string };
  server?: { name?: string };
}

function parseReply(account: string, text: string): ClaimsUpdateAck {
  let reply: UpdateReply;
  try {
    reply = JSON.parse(text) as UpdateReply;
  } catch (cause) {
    throw new ClaimsUpdateRejectedError(account, `unreadable reply ${JSON.stringify(text.slice(0, 200))}`, { cause });
  }
  if (reply.error !== undefined) {
    throw new ClaimsUpdateRejectedError(account, `${reply.error.description ?? "no description"} (code ${reply.error.code ?? "?"})`);
  }
  if (reply.data?.code !== 200) {
    throw new ClaimsUpdateRejectedError(account, `unexpected reply ${JSON.stringify(text.slice(0, 200))}`);
  }
  return { account, server: reply.server?.name, message: reply.data.message ?? "" };
}

function findCause<T extends Error>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof type) return e;
  return undefined;
}

/**
 * What revokeAgent did. In every case the revocation is recorded in the authority,
 * persisted, and part of every account JWT signed from now on (so of the embedded
 * server's preload at its next start).
 */
export type RevokeAgentResult =
  /** A server took the new account JWT and has closed the user's connections. */
  | { status: "applied"; revocation: Revocation; server: string | undefined }
  /** No server answered; NatsAccess keeps pushing in the background (and after each reconnect). */
  | { status: "pending"; revocation: Revocation; error: ClaimsUpdateUnavailableError }
  /** The server refused the JWT; no retry until the next revocation or reconnect. Fix the server config. */
  | { status: "rejected"; revocation: Revocation; error: ClaimsUpdateRejectedError };

export interface NatsAccessOptions {
  /** One URL or several (a cluster); e.g. the embedded server's `url`. */
  servers: string | string[];
  authority: Authority;
  /** Connection name shown in the server's monitor. Default "weft-controller-system". */
  name?: string;
  /** Pushes and connection changes; pass one bound to the component, e.g. `log.child({ component: "nats-access" })`. */
  logger?: Logger;
  /** Reply timeout of one push. Default 5 s. */
  timeoutMs?: number;
  /** Keep retrying the first connect instead of failing. Default false. */
  waitOnFirstConnect?: boolean;
  /** The CA (PEM) of the server's certificate; set: TLS, trusting only it. */
  caPem?: string;
}

/** The controller's system-account connection: revokes agent credentials on the running servers. */
export class NatsAccess {
  readonly #nc: NatsConnection;
  readonly #authority: Authority;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  /** Serializes pushes, so an older JWT never overtakes a newer one. */
  #chain: Promise<unknown> = Promise.resolve();
  #syncWanted = false;
  #syncing = false;
  #closed = false;
  #wake: (() => void) | undefined;

  private constructor(nc: NatsConnection, opts: NatsAccessOptions) {
    this.#nc = nc;
    this.#authority = opts.authority;
    this.#log = opts.logger ?? silentLogger;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * Connects as a freshly issued system user (reconnecting forever, with jitter) and
   * pushes the current account JWT once; a failed first push is logged and retried in
   * the background. Throws what `connect` throws (e.g. an AuthorizationError when the
   * server does not trust this authority).
   */
  static async connect(opts: NatsAccessOptions): Promise<NatsAccess> {
    const user = await opts.authority.issueSystemUser({ name: opts.name ?? "weft-controller-system" });
    const nc = await connect({
      servers: opts.servers,
      name: opts.name ?? "weft-controller-system",
      authenticator: jwtAuthenticator(user.jwt, user.seed()),
      inboxPrefix: SYSTEM_USER_INBOX_PREFIX,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      reconnectJitter: 500,
      ...CONTROLLER_PING,
      ...dialTimeout(opts.servers),
      ...NO_ASYNC_TRACES,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
      ...natsTlsOptions(opts.caPem),
    });
    const access = new NatsAccess(nc, opts);
    access.#watchStatus();
    try {
      await access.push();
    } catch (err) {
      access.#log.warn({ err: errMessage(err) }, "initial account claims push failed; retrying in the background");
      access.#requestSync();
    }
    return access;
  }

  /**
   * Revokes every JWT issued so far to an agent's user key and closes its connections:
   * authority.revokeUser (persisted), then a push of the new account JWT. Throws only
   * when nothing was recorded: InvalidUserKeyError, AuthorityStateError. A push that
   * fails is reported in the result, never thrown.
   */
  async revokeAgent(userPublicKey: string): Promise<RevokeAgentResult> {
    const revocation = await this.#authority.revokeUser(userPublicKey);
    const log = { user: userPublicKey, revokedAt: revocation.revokedAt.toISOString() };
    try {
      const ack = await this.push();
      this.#log.info({ ...log, server: ack.server }, "agent credential revoked");
      return { status: "applied", revocation, server: ack.server };
    } catch (err) {
      if (err instanceof ClaimsUpdateUnavailableError) {
        this.#log.warn({ ...log, err: err.message }, "agent credential revoked; the server has not taken it yet, retrying");
        this.#requestSync();
        return { status: "pending", revocation, error: err };
      }
      if (err instanceof ClaimsUpdateRejectedError) {
        this.#log.error({ ...log, err: err.message }, "agent credential revoked; the server refused the account JWT");
        return { status: "rejected", revocation, error: err };
      }
      throw err;
    }
  }

  /**
   * Drops revocations that cover only expired JWTs (Authority.pruneRevocations) and, when any were
   * dropped, pushes the smaller account JWT. Returns how many were dropped; never throws.
   */
  async prune(now: Date = new Date()): Promise<number> {
    try {
      const dropped = await this.#authority.pruneRevocations(now);
      if (dropped.length > 0) {
        this.#log.info({ pruned: dropped.length, revokedUsers: this.#authority.revocations().size }, "pruned revocations whose credentials have all expired");
        this.#requestSync();
      }
      return dropped.length;
    } catch (err) {
      this.#log.warn({ err: errMessage(err) }, "cannot prune the revocation list; will try again");
      return 0;
    }
  }

  /** Pushes the authority's current account JWT now (after other pushes in flight). Throws like pushAccountClaims. */
  push(): Promise<ClaimsUpdateAck> {
    const run = this.#chain.then(() => pushAccountClaims(this.#nc, this.#authority, { timeoutMs: this.#timeoutMs }));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Makes sure the authority's current account JWT reaches a server, in the background (after the
   * authority took in revocations made elsewhere: adoptRevocations). Never throws.
   */
  sync(): void {
    this.#requestSync();
  }

  /** True once close() was called or the connection closed for good. */
  get closed(): boolean {
    return this.#closed || this.#nc.isClosed();
  }

  /** Stops background pushes and drains the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    if (!this.#nc.isClosed()) await this.#nc.drain().catch(() => this.#nc.close());
  }

  #watchStatus(): void {
    void (async () => {
      for await (const s of this.#nc.status()) {
        switch (s.type) {
          case "reconnect":
            this.#log.info({ server: s.server }, "system connection reconnected; pushing account claims");
            this.#requestSync();
            break;
          case "disconnect":
            this.#log.warn({ server: s.server }, "system connection lost");
            break;
          case "error":
            this.#log.error({ err: s.error.message }, "system connection error");
            break;
          default:
            break;
        }
      }
    })();
  }

  /** Makes sure the current account JWT reaches a server: pushes until one takes it. */
  #requestSync(): void {
    this.#syncWanted = true;
    this.#wake?.(); // a loop sleeping in backoff tries now
    if (this.#syncing || this.#closed) return;
    this.#syncing = true;
    void this.#syncLoop().finally(() => {
      this.#syncing = false;
    });
  }

  async #syncLoop(): Promise<void> {
    const backoff = new Backoff({ initialMs: RETRY_MIN_MS, maxMs: RETRY_MAX_MS });
    while (this.#syncWanted && !this.closed) {
      this.#syncWanted = false;
      try {
        const ack = await this.push();
        this.#log.info({ server: ack.server, revokedUsers: this.#authority.revocations().size }, "account claims pushed");
        backoff.reset();
      } catch (err) {
        if (!(err instanceof NatsLayerError) || !err.retryable) {
          this.#log.error({ err: errMessage(err) }, "account claims push refused; waiting for the next change or reconnect");
          continue;
        }
        this.#syncWanted = true;
        const wait = backoff.next();
        this.#log.warn({ err: err.message, retryInMs: wait }, "account claims push failed");
        const wake = new AbortController();
        this.#wake = () => wake.abort();
        await sleep(wait, wake.signal).catch(() => undefined);
        this.#wake = undefined;
      }
    }
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
