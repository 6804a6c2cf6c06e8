/**
 * Singleton work asked of a follower is done by the leader: the follower asks the leader's API (the
 * URL in the lease) with the admin token and CA the controllers share, and answers with what the
 * leader answered — every controller serves the whole API. A request that was already forwarded is
 * never forwarded again (FORWARDED_BY_HEADER): a leadership change in between ends in a refusal,
 * not a loop. When the leader cannot be asked (no API in the lease, unreachable, another admin
 * token), the follower's own refusal stands — 503 `not_leader` naming the leader — with why the
 * forward failed added to it and logged.
 */
import { ControllerClient } from "@weft/protocol";
import type { Logger } from "pino";
import { NotLeaderError } from "../errors.js";
import type { LeaderInfo } from "./election.js";

/** Set on a forwarded request: the forwarding controller's id. */
export const FORWARDED_BY_HEADER = "x-weft-forwarded-by";

export interface ToLeaderOptions {
  election: { readonly id: string; leader(): LeaderInfo | undefined };
  /** The admin token the controllers share (README, "What controllers share"). */
  adminToken: string;
  /** The API's CA the controllers share; undefined when the API is plain HTTP. */
  caPem: string | undefined;
  /** Longest a forwarded request may take (an inventory sync waits for every account). */
  timeoutMs?: number;
  log: Logger;
}

export class ToLeader {
  constructor(private readonly o: ToLeaderOptions) {}

  /**
   * `run` here; when it refuses because this controller does not lead, and the request was not
   * forwarded to this controller already (`forwardedBy`), `forward` with a client of the leader's API.
   */
  async orForward<T>(what: string, forwardedBy: string | undefined, run: () => Promise<T>, forward: (leader: ControllerClient) => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof NotLeaderError) || forwardedBy !== undefined) throw err;
      const leader = this.o.election.leader();
      if (!leader?.api || leader.holder === this.o.election.id) throw err;
      const started = performance.now();
      try {
        // Inside the try: a lease URL this client refuses (an http:// one with our CA) is a failed ask too.
        const client = new ControllerClient({
          url: leader.api,
          adminToken: this.o.adminToken,
          ...(this.o.caPem ? { caPem: this.o.caPem } : {}),
          headers: { [FORWARDED_BY_HEADER]: this.o.election.id },
          timeoutMs: this.o.timeoutMs ?? 600_000,
        });
        const answer = await forward(client);
        this.o.log.info({ leader: leader.holder, api: leader.api, ms: Math.round(performance.now() - started) }, `${what} forwarded to the leader`);
        return answer;
      } catch (cause) {
        const why = cause instanceof Error ? cause.message : String(cause);
        this.o.log.warn({ err: cause, leader: leader.holder, api: leader.api }, `${what}: the leader could not be asked; refusing`);
        throw new NotLeaderError(`${err.message}; asking it failed: ${why}`, { cause });
      }
    }
  }
}
