/**
 * The SVID service: agents ask on `weft.v1.node.<id>.svid.x509` (a CSR) and
 * `weft.v1.node.<id>.svid.jwt` (an audience) for SVIDs of one SPIFFE ID; the controller signs only
 * for an ID the node may hold as the registry records it — the node's own identity or one of its
 * workloads' (`svidIdsOf`, pure) — and, for a workload's, only while what vouched for the node
 * still grants it (`mayHoldIdentity`, workloads/grants.ts: an instance tag removed since the
 * workload was recorded ends its SVIDs). The node id comes from the subject, which NATS permissions confine
 * to the agent's own root, never from the body; the reply must go to that agent's inbox.
 *
 * Requests of one node run one after another. A refusal is an `ok: false` reply with a code and a
 * message naming what was wrong; nothing is stored either way (SVIDs are not recorded).
 */
import { JwtSvidRequest, NODE_ID_PATTERN, Subjects, X509SvidRequest, type JwtSvidReply, type NodeView, type X509SvidReply } from "@weft/protocol";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { KeyedSerial } from "@weft/util";
import type { Logger } from "pino";
import { ControllerError, ForbiddenError, ValidationError } from "../errors.js";
import type { NodeRegistry } from "../nodes/registry.js";
import { fieldIssues } from "../validation.js";
import { identityName, mayHoldIdentity } from "../workloads/grants.js";
import type { TrustDomainAuthority } from "./authority.js";
import { CsrError, checkCsr, issueX509Svid } from "./x509.js";

/** Queue group of the controllers serving SVID requests: one answer per request. */
export const SVID_QUEUE = "weft-controller";

export interface SvidServiceOptions {
  authority: TrustDomainAuthority;
  registry: Pick<NodeRegistry, "get">;
  /** Lifetime of an X.509-SVID. */
  x509TtlSeconds: number;
  /** Lifetime of a JWT-SVID. */
  jwtTtlSeconds: number;
  log: Logger;
  now?: () => Date;
}

/** The SPIFFE IDs a node may hold SVIDs for: its identity and its workloads' (pure). */
export function svidIdsOf(node: Pick<NodeView, "identity" | "workloads">): Set<string> {
  const ids = new Set<string>();
  if (node.identity) ids.add(node.identity.spiffeId);
  for (const w of node.workloads ?? []) ids.add(w.identity.spiffeId);
  return ids;
}

type Reply<T> = T | { ok: false; error: { code: string; message: string } };

export class SvidService {
  private readonly queues = new KeyedSerial();

  constructor(private readonly o: SvidServiceOptions) {}

  /** Sign the CSR of `body` for `nodeId`; never throws (a refusal is an `ok: false` reply). */
  x509(nodeId: string, body: unknown): Promise<X509SvidReply> {
    return this.answer(nodeId, "x509", async () => {
      const req = parse(X509SvidRequest, body, "X.509-SVID request");
      await this.authorize(nodeId, req.spiffeId);
      let publicKey;
      try {
        publicKey = await checkCsr(req.csr);
      } catch (err) {
        if (err instanceof CsrError) throw new ValidationError(err.message, { details: [{ path: "csr", message: err.message }] });
        throw err;
      }
      const now = this.now();
      const notAfter = new Date(Math.min(now.getTime() + this.o.x509TtlSeconds * 1000, this.o.authority.caNotAfter.getTime()));
      const certificate = await issueX509Svid({ ca: this.o.authority.ca, spiffeId: req.spiffeId, publicKey, now, notAfter });
      this.o.log.info({ node: nodeId, spiffeId: req.spiffeId, expiresAt: notAfter.toISOString() }, "signed an X.509-SVID");
      return { ok: true as const, certificate, expiresAt: notAfter.toISOString() };
    });
  }

  /** Sign a JWT-SVID for `nodeId`; never throws. */
  jwt(nodeId: string, body: unknown): Promise<JwtSvidReply> {
    return this.answer(nodeId, "jwt", async () => {
      const req = parse(JwtSvidRequest, body, "JWT-SVID request");
      await this.authorize(nodeId, req.spiffeId);
      const now = this.now();
      const expiresAt = new Date(now.getTime() + this.o.jwtTtlSeconds * 1000);
      const token = await this.o.authority.signJwt(req.spiffeId, req.audience, now, expiresAt);
      this.o.log.debug({ node: nodeId, spiffeId: req.spiffeId, audience: req.audience }, "signed a JWT-SVID");
      return { ok: true as const, token, expiresAt: expiresAt.toISOString() };
    });
  }

  /** Serve both subjects on `nc` (queue group SVID_QUEUE). */
  serve(nc: NatsConnection): Subscription[] {
    const on = (subject: string, handle: (nodeId: string, body: unknown) => Promise<unknown>) =>
      nc.subscribe(subject, {
        queue: SVID_QUEUE,
        callback: (err, msg) => {
          if (err) return this.o.log.warn({ err, subject }, "SVID subscription error");
          void this.onMessage(msg, handle);
        },
      });
    return [on(Subjects.allX509Svids, (id, body) => this.x509(id, body)), on(Subjects.allJwtSvids, (id, body) => this.jwt(id, body))];
  }

  private async onMessage(msg: Msg, handle: (nodeId: string, body: unknown) => Promise<unknown>): Promise<void> {
    const nodeId = msg.subject.split(".")[3] ?? "";
    if (!NODE_ID_PATTERN.test(nodeId) || !msg.reply?.startsWith(`${Subjects.inboxPrefix(nodeId)}.`)) {
      this.o.log.warn({ subject: msg.subject }, "dropping SVID request without the node's own reply inbox");
      return;
    }
    let body: unknown;
    try {
      body = msg.json();
    } catch {
      body = undefined;
    }
    const reply = body === undefined ? { ok: false, error: { code: "invalid_request", message: "SVID request is not JSON" } } : await handle(nodeId, body);
    try {
      msg.respond(JSON.stringify(reply));
    } catch (err) {
      this.o.log.warn({ node: nodeId, err }, "cannot answer an SVID request");
    }
  }

  private async authorize(nodeId: string, spiffeId: string): Promise<void> {
    const node = await this.o.registry.get(nodeId); // NotFoundError
    if (svidIdsOf(node).has(spiffeId)) {
      const name = identityName(spiffeId);
      if (spiffeId === node.identity?.spiffeId || (name !== undefined && mayHoldIdentity(node, name))) return;
      throw new ForbiddenError(`node ${node.name} is no longer granted ${spiffeId} (its key's, enrollment policy's or instance's weft:workload-identities)`);
    }
    throw new ForbiddenError(`node ${node.name} may not hold ${spiffeId}: a node gets SVIDs only for its own identity and its workloads' (as the controller recorded them)`);
  }

  private async answer<T>(nodeId: string, kind: string, fn: () => Promise<T>): Promise<Reply<T>> {
    try {
      return await this.queues.run(nodeId, fn);
    } catch (err) {
      if (err instanceof ControllerError) {
        if (err.status >= 500) this.o.log.warn({ node: nodeId, err, kind }, "SVID request failed");
        else this.o.log.info({ node: nodeId, reason: err.message, kind }, "SVID request refused");
        return { ok: false, error: { code: err.code, message: err.message } };
      }
      this.o.log.error({ node: nodeId, err, kind }, "SVID request failed");
      return { ok: false, error: { code: "store_unavailable", message: "the controller could not sign the SVID; retry" } };
    }
  }

  private now(): Date {
    return (this.o.now ?? (() => new Date()))();
  }
}

function parse<S extends typeof X509SvidRequest | typeof JwtSvidRequest>(schema: S, body: unknown, what: string): ReturnType<S["parse"]> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issues = fieldIssues(parsed.error);
    throw new ValidationError(`${what} is invalid: ${issues.map((d) => `${d.path}: ${d.message}`).join("; ")}`, { details: issues });
  }
  return parsed.data as ReturnType<S["parse"]>;
}
