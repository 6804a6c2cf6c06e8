/**
 * The HTTP server for the route table: admin bearer-token auth, JSON bodies
 * parsed with each route's schema before its handler runs (body.ts), and one
 * error shape (`ApiError`) for every failure, including malformed JSON, bodies
 * that fail their schema, and unknown routes. Listens on TCP (HTTPS when given a key and certificate
 * chain) and, for local admin tools, on a unix socket (plain HTTP).
 *
 * Routes strangers call (`stranger`: enrollment, the enrollment nonce) say nothing to them beyond
 * a stable code: a refusal's detail (addresses, account, tags, policy names, node ids) goes to the
 * log with a reference the caller is given, and to the refusal counters; and they are rate-limited
 * per source address (@fastify/rate-limit: 429 with Retry-After, an LRU of bounded size).
 *
 * Admin routes take the bearer admin token or, when console sessions are configured, the
 * console's session cookie (with its CSRF header on state-changing methods; see
 * console/sessions.ts). A request that carries an Authorization header is judged by it alone.
 * `/metrics` takes the admin token or the metrics token (read-only, for Prometheus).
 */
import { randomBytes } from "node:crypto";
import type { Server as TlsServer } from "node:tls";
import rateLimit from "@fastify/rate-limit";
import fastifyCookie from "@fastify/cookie";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { CSRF_HEADER, SESSION_COOKIE, type ConsoleSessions } from "../console/sessions.js";
import { ControllerError, ForbiddenError, RateLimitedError, UnauthorizedError, ValidationError, refusalReason } from "../errors.js";
import { tokensMatch } from "../keys/secret.js";
import type { ControllerCounters } from "../metrics/counters.js";
import { parseBody } from "./body.js";
import { openApiDocument, type Route } from "./routes.js";

/** Per source address, per stranger route: at most `max` requests in `windowSeconds`. */
export interface StrangerRateLimit {
  max: number;
  windowSeconds: number;
  /** Source addresses remembered at once (least recently seen forgotten first). */
  trackedAddresses: number;
}

export interface ApiServerOptions {
  routes: readonly Route[];
  adminToken: string;
  log: Logger;
  version: string;
  /** Serve HTTPS with this key and certificate chain (PEM). Absent: plain HTTP. */
  https?: { key: string; cert: string };
  /** Refusals of stranger routes are counted here. */
  counters?: ControllerCounters;
  /** Rate-limit stranger routes per source address. Absent: no limit (the local unix socket). */
  rateLimit?: StrangerRateLimit;
  /** Console sessions: admin routes also accept the session cookie. Absent: bearer token only. */
  sessions?: ConsoleSessions;
  /** A read-only token for `auth: "metrics"` routes (the admin token works there too). */
  metricsToken?: string;
  /** Told of every finished request: method, route template, status, seconds (metrics). */
  onResponse?: (method: string, route: string, status: number, seconds: number) => void;
  /** Registers more on the app (the console's static files) before the routes. */
  extend?: (app: FastifyInstance) => void;
}

const BODY_LIMIT = 64 * 1024;

export function buildApiServer(opts: ApiServerOptions): FastifyInstance {
  // Fastify's own logger stays off: requests are not logged, failures are (sendError).
  const app = Fastify({
    ...(opts.https ? { https: opts.https } : {}),
    logger: false,
    bodyLimit: BODY_LIMIT,
    trustProxy: false,
    // Bad percent-encoding and over-long path parameters are rejected by the router
    // before any handler; give them the API's error shape too.
    frameworkErrors: (err, req, reply) => sendError(err, req, reply, opts.log),
  });
  const openapi = openApiDocument(opts.routes, opts.version);
  void app.register(fastifyCookie);
  if (opts.onResponse) {
    const observe = opts.onResponse;
    app.addHook("onResponse", async (req, reply) => observe(req.method, req.routeOptions.url ?? "unmatched", reply.statusCode, reply.elapsedTime / 1000));
  }
  opts.extend?.(app);

  const strangerOf = new Map(opts.routes.filter((r) => r.stranger).map((r) => [`${r.method} ${r.path}`, r.stranger!.endpoint]));
  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    const endpoint = strangerOf.get(`${req.method} ${req.routeOptions.url ?? ""}`);
    if (endpoint !== undefined) return sendStrangerError(err, req, reply, endpoint, opts);
    sendError(err, req, reply, opts.log);
  });
  if (opts.rateLimit) {
    const limit = opts.rateLimit;
    void app.register(rateLimit, {
      global: false,
      cache: limit.trackedAddresses,
      errorResponseBuilder: (_req, ctx) => new RateLimitedError(`too many requests from this address; retry in ${Math.ceil(ctx.ttl / 1000)} s`),
    });
  }
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: "not_found", message: `no route ${req.method} ${req.url}; see GET /openapi.json` });
  });

  app.get("/openapi.json", async () => openapi);
  // The routes go in a plugin registered after the rate limiter, so the limiter's onRoute hook
  // (which reads each route's `config.rateLimit`) is in place when they are added.
  void app.register(async (scope) => addRoutes(scope, opts));
  return app;
}

function addRoutes(app: FastifyInstance, opts: ApiServerOptions): void {
  for (const route of opts.routes) {
    app.route({
      method: route.method,
      url: route.path,
      ...(route.stranger && opts.rateLimit ? { config: { rateLimit: { max: opts.rateLimit.max, timeWindow: opts.rateLimit.windowSeconds * 1000 } } } : {}),
      // Admin credentials are checked before the body is read: a caller without
      // them gets 401 whatever it sends, and never makes the server parse a body.
      ...(route.auth === "admin" ? { onRequest: async (req: FastifyRequest) => requireAdmin(req, opts.adminToken, opts.sessions) } : {}),
      ...(route.auth === "metrics" ? { onRequest: async (req: FastifyRequest) => requireMetrics(req, opts.adminToken, opts.metricsToken) } : {}),
      handler: async (req, reply) => {
        const closed = new AbortController();
        req.raw.once("close", () => closed.abort());
        reply.raw.once("close", () => closed.abort());
        const result = await route.handler({
          // A body that fails the route's schema is a 400 here: the handler never sees it.
          body: route.body ? parseBody(route.body, req.body) : undefined,
          params: (req.params ?? {}) as Record<string, string>,
          remoteAddress: req.socket.remoteAddress,
          host: hostOf(req.headers.host),
          cookie: (name) => req.cookies[name],
          header: (name) => headerOf(req, name),
          setCookie: (name, value, o) => void reply.setCookie(name, value, { path: "/", httpOnly: true, secure: true, sameSite: "strict", ...o }),
          signal: closed.signal,
        });
        if (route.produces === "text/event-stream") {
          // The handler returns a stream; the connection stays open until either side ends it.
          void reply.code(200).headers({ "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" });
          return reply.send(result);
        }
        if (route.produces === "text/plain") void reply.type(typeof route.contentType === "function" ? route.contentType() : "text/plain; charset=utf-8");
        if (route.produces === "file") void reply.type(typeof route.contentType === "function" ? route.contentType() : "application/octet-stream");
        return reply.code(route.status ?? 200).send(result);
      },
    });
  }
}

/** Swaps the key and certificate of a running HTTPS server; connections made from now on use them. */
export function replaceCertificate(app: FastifyInstance, tls: { key: string; cert: string }): void {
  (app.server as unknown as TlsServer).setSecureContext(tls);
}

function requireAdmin(req: FastifyRequest, adminToken: string, sessions: ConsoleSessions | undefined): void {
  const header = req.headers.authorization;
  if (!header) {
    const session = sessions ? req.cookies[SESSION_COOKIE] : undefined;
    if (sessions && session !== undefined) {
      const refused = sessions.authorize(session, req.method, headerOf(req, CSRF_HEADER));
      if (refused === undefined) return;
      if (refused === "csrf") throw new ForbiddenError(`a console request that changes state needs the session's CSRF token in the ${CSRF_HEADER} header`);
      throw new UnauthorizedError(refused === "expired" ? "console session expired; log in again" : "console session is not valid; log in again");
    }
    throw new UnauthorizedError("missing admin token: send `Authorization: Bearer <token>` (see the controller's admin-token file)");
  }
  const match = /^Bearer (\S+)$/.exec(header);
  if (!match?.[1] || !tokensMatch(match[1], adminToken)) throw new UnauthorizedError("admin token is not valid");
}

function requireMetrics(req: FastifyRequest, adminToken: string, metricsToken: string | undefined): void {
  const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "");
  const presented = match?.[1];
  if (presented && (tokensMatch(presented, adminToken) || (metricsToken !== undefined && tokensMatch(presented, metricsToken)))) return;
  throw new UnauthorizedError("missing or wrong token: send `Authorization: Bearer <token>` with the controller's metrics-token (or admin-token)");
}

function headerOf(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^(\[[^\]]+\]|[^:]+)(:\d+)?$/.exec(header);
  return match?.[1];
}

/** What a stranger is told for each refusal code; the detail stays in the log under the reference. */
const STRANGER_MESSAGES: Readonly<Record<string, string>> = {
  join_key_rejected: "enrollment refused: the join key does not admit this enrollment",
  instance_rejected: "enrollment refused: the instance identity does not admit this enrollment",
  site_rejected: "enrollment refused: the site does not match what vouches for this node",
  conflict: "enrollment refused: it conflicts with an enrolled node (name, WireGuard key or overlay address)",
  not_found: "not found",
  rate_limited: "too many requests from this address; retry after the Retry-After seconds",
};

/**
 * A refusal on a stranger route: 400s (the caller's own fields) as they are; everything else as
 * its code and a generic message with a reference, the detail logged under that reference and
 * counted by reason.
 */
function sendStrangerError(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply, endpoint: string, opts: ApiServerOptions): void {
  const reference = `ref-${randomBytes(5).toString("hex")}`;
  const source = req.socket.remoteAddress;
  const body = req.body as { name?: unknown } | undefined;
  const name = typeof body?.name === "string" ? body.name.slice(0, 63) : undefined;
  if (err instanceof ValidationError) {
    opts.counters?.refusals.inc({ endpoint, reason: "invalid_request" });
    sendError(err, req, reply, opts.log);
    return;
  }
  if (err instanceof ControllerError) {
    const reason = refusalReason(err);
    opts.counters?.refusals.inc({ endpoint, reason });
    const fields = { endpoint, reason, reference, source, ...(name === undefined ? {} : { name }), err: err.message };
    if (err.status >= 500) opts.log.error(fields, "request failed");
    else if (err instanceof RateLimitedError) opts.log.debug(fields, "request refused");
    else opts.log.warn(fields, "request refused");
    const message = err.status >= 500 ? "the controller cannot take this request now; retry" : (STRANGER_MESSAGES[err.code] ?? "request refused");
    void reply.code(err.status).send({ error: err.code, message: `${message} (reference ${reference})` });
    return;
  }
  const status = "statusCode" in err && typeof err.statusCode === "number" ? err.statusCode : 500;
  if (status >= 400 && status < 500) {
    opts.counters?.refusals.inc({ endpoint, reason: "invalid_request" });
    sendError(err, req, reply, opts.log);
    return;
  }
  opts.counters?.refusals.inc({ endpoint, reason: "internal" });
  opts.log.error({ endpoint, reference, source, err }, "unexpected error");
  void reply.code(500).send({ error: "internal", message: `internal error (reference ${reference})` });
}

function sendError(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply, log: Logger): void {
  if (err instanceof ControllerError) {
    if (err.status >= 500) log.error({ err, route: req.url }, "request failed");
    void reply.code(err.status).send({ error: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) });
    return;
  }
  const status = "statusCode" in err && typeof err.statusCode === "number" ? err.statusCode : 500;
  if (status >= 400 && status < 500) {
    // Fastify's own rejections: malformed JSON, wrong content type, body too large.
    const message = "code" in err && err.code === "FST_ERR_CTP_BODY_TOO_LARGE" ? `request body is larger than ${BODY_LIMIT} bytes` : `bad request: ${err.message}`;
    void reply.code(status).send({ error: "invalid_request", message });
    return;
  }
  log.error({ err, route: req.url }, "unexpected error");
  void reply.code(500).send({ error: "internal", message: "internal error; see the controller log" });
}
