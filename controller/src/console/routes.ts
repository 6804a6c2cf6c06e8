/**
 * The console's rows of the REST route table: login, session and logout (the admin token becomes
 * a session cookie), the live event stream, the policy matrix and flows the console draws, and
 * `/metrics`. They go through the same server as every other route (schemas, errors, OpenAPI).
 */
import { ConsoleLoginRequest, ConsoleSessionView, FlowsView, PolicyMatrix } from "@weft/protocol";
import { z } from "zod";
import { route, type Route } from "../api/routes.js";
import { ForbiddenError, UnauthorizedError } from "../errors.js";
import { tokensMatch } from "../keys/secret.js";
import type { ControllerMetrics } from "../metrics/metrics.js";
import type { ConsoleEvents } from "./events.js";
import { policyMatrix, type MatrixInput } from "./matrix.js";
import { CSRF_HEADER, SESSION_COOKIE, type ConsoleSessions } from "./sessions.js";

export interface ConsoleRouteServices {
  adminToken: string;
  sessions: ConsoleSessions;
  events: ConsoleEvents;
  /** What the matrix is computed from, read afresh for each request. */
  matrixInput: () => Promise<MatrixInput>;
  flows: () => FlowsView;
  metrics: ControllerMetrics;
}

const LoggedOut = z.object({ loggedOut: z.boolean() });

export function consoleRoutes(s: ConsoleRouteServices): Route[] {
  return [
    route({
      method: "POST",
      path: "/console/login",
      summary: "Log in to the console with the admin token: sets the session cookie (HttpOnly, Secure, SameSite=Strict) and returns the session's CSRF token",
      auth: "none",
      body: { schema: ConsoleLoginRequest, what: "login request" },
      response: ConsoleSessionView,
      errors: [401],
      handler: async (ctx): Promise<ConsoleSessionView> => {
        if (!tokensMatch(ctx.body.token, s.adminToken)) throw new UnauthorizedError("admin token is not valid");
        const grant = s.sessions.create();
        ctx.setCookie(SESSION_COOKIE, grant.id, { expires: grant.expiresAt });
        return { csrfToken: grant.csrfToken, expiresAt: grant.expiresAt.toISOString() };
      },
    }),
    {
      method: "GET",
      path: "/console/session",
      summary: "The console session the cookie names: its CSRF token and expiry (401 when there is none)",
      auth: "none",
      response: ConsoleSessionView,
      errors: [401],
      handler: async (ctx): Promise<ConsoleSessionView> => {
        const info = s.sessions.info(ctx.cookie(SESSION_COOKIE));
        if (!info) throw new UnauthorizedError("no console session; log in");
        return { csrfToken: info.csrfToken, expiresAt: info.expiresAt.toISOString() };
      },
    },
    {
      method: "POST",
      path: "/console/logout",
      summary: "End the console session (needs its CSRF token in X-Weft-CSRF) and clear the cookie",
      auth: "none",
      body: { schema: z.object({}).strict(), what: "logout request", emptyIsObject: true },
      response: LoggedOut,
      errors: [403],
      handler: async (ctx) => {
        const id = ctx.cookie(SESSION_COOKIE);
        const refused = s.sessions.authorize(id, "POST", ctx.header(CSRF_HEADER));
        if (refused === "csrf") throw new ForbiddenError(`logout needs the session's CSRF token in the ${CSRF_HEADER} header`);
        const loggedOut = refused === undefined && s.sessions.destroy(id);
        ctx.setCookie(SESSION_COOKIE, "", { maxAge: 0 });
        return { loggedOut };
      },
    },
    {
      method: "GET",
      path: "/v1/events",
      summary: "Server-sent events naming what changed (nodes, liveness, policies, identities, inventory, flows); read those routes again when one arrives",
      auth: "admin",
      produces: "text/event-stream",
      response: z.object({ event: z.string(), data: z.string(), id: z.string().optional(), retry: z.number().int().optional() }),
      handler: async (ctx) => s.events.open(ctx.signal),
    },
    {
      method: "GET",
      path: "/v1/policy-matrix",
      summary: "Who may reach whom: every pair of identities in use, its verdict, ports and the rules that decide it",
      auth: "admin",
      response: PolicyMatrix,
      handler: async () => policyMatrix(await s.matrixInput()),
    },
    {
      method: "GET",
      path: "/v1/flows",
      summary: "Flows per identity pair from the agents' reports: the last interval and the total since the controller started, drops by reason",
      auth: "admin",
      response: FlowsView,
      handler: async () => s.flows(),
    },
    {
      method: "GET",
      path: "/metrics",
      summary: "Prometheus metrics of the controller (text exposition format); the metrics token or the admin token",
      auth: "metrics",
      produces: "text/plain",
      contentType: () => s.metrics.contentType,
      response: z.string(),
      handler: () => s.metrics.text(),
    },
  ];
}
