/**
 * The HTTP server for the route table: admin bearer-token auth, JSON bodies,
 * and one error shape (`ApiError`) for every failure, including malformed JSON
 * and unknown routes. Listens on TCP (HTTPS when given a key and certificate
 * chain) and, for local admin tools, on a unix socket (plain HTTP).
 */
import type { Server as TlsServer } from "node:tls";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { ControllerError, UnauthorizedError } from "../errors.js";
import { tokensMatch } from "../keys/secret.js";
import { openApiDocument, type Route } from "./routes.js";

export interface ApiServerOptions {
  routes: Route[];
  adminToken: string;
  log: Logger;
  version: string;
  /** Serve HTTPS with this key and certificate chain (PEM). Absent: plain HTTP. */
  https?: { key: string; cert: string };
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

  app.setErrorHandler((err: FastifyError | Error, req, reply) => sendError(err, req, reply, opts.log));
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: "not_found", message: `no route ${req.method} ${req.url}; see GET /openapi.json` });
  });

  app.get("/openapi.json", async () => openapi);
  for (const route of opts.routes) {
    app.route({
      method: route.method,
      url: route.path,
      // Admin credentials are checked before the body is read: a caller without
      // them gets 401 whatever it sends, and never makes the server parse a body.
      ...(route.auth === "admin" ? { onRequest: async (req: FastifyRequest) => requireAdmin(req, opts.adminToken) } : {}),
      handler: async (req, reply) => {
        const result = await route.handler({
          body: req.body,
          params: (req.params ?? {}) as Record<string, string>,
          remoteAddress: req.socket.remoteAddress,
          host: hostOf(req.headers.host),
        });
        if (route.produces) void reply.type(route.produces);
        return reply.code(route.status ?? 200).send(result);
      },
    });
  }
  return app;
}

/** Swaps the key and certificate of a running HTTPS server; connections made from now on use them. */
export function replaceCertificate(app: FastifyInstance, tls: { key: string; cert: string }): void {
  (app.server as unknown as TlsServer).setSecureContext(tls);
}

function requireAdmin(req: FastifyRequest, adminToken: string): void {
  const header = req.headers.authorization;
  if (!header) throw new UnauthorizedError("missing admin token: send `Authorization: Bearer <token>` (see the controller's admin-token file)");
  const match = /^Bearer (\S+)$/.exec(header);
  if (!match?.[1] || !tokensMatch(match[1], adminToken)) throw new UnauthorizedError("admin token is not valid");
}

function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^(\[[^\]]+\]|[^:]+)(:\d+)?$/.exec(header);
  return match?.[1];
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
