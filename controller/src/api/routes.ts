/**
 * The REST API as one table: each route names its method, path, auth, request
 * and response schemas and handler. The server registers the table (and parses
 * each body with its route's schema before the handler runs, body.ts) and the
 * OpenAPI document is generated from it, so the three cannot drift apart.
 */
import { ApiError, EnrollNonce, EnrollRequest, EnrollResponse, EnrollmentPolicy, JoinKeyCreateRequest, JoinKeyCreated, JoinKeyInfo, NodePolicy, NodeView, Identity, Policy, type PolicyDelivery } from "@weft/protocol";
import { NodeServicesRecord, Service, ServiceRecord, ServiceView } from "@weft/protocol";
import { InventorySyncRequest, InventorySyncResult, InventoryView } from "@weft/protocol";
import { z } from "zod";
import type { InstanceAttestor } from "../attest/index.js";
import type { Enrollment } from "../enroll/enroll.js";
import type { EnrollmentPolicies } from "../enroll/enrollment-policies.js";
import type { IdentityAllocator } from "../identity/allocator.js";
import type { InventoryPlanner } from "../inventory/plan.js";
import type { JoinKeys } from "../keys/joinkeys.js";
import type { ControllerCounters } from "../metrics/counters.js";
import type { NodeRegistry } from "../nodes/registry.js";
import type { PolicyService } from "../policy/policies.js";
import type { ServiceCatalog } from "../services/catalog.js";
import { enrollRequestIssues, refuseAssignedFields } from "../enroll/enroll.js";
import { policyIssues } from "../policy/policies.js";
import { FORWARDED_BY_HEADER } from "../leader/forward.js";
import type { RouteBody } from "./body.js";

export interface RouteContext<B = unknown> {
  /** The body, parsed with the route's schema (undefined for a route without a body). */
  body: B;
  params: Record<string, string>;
  /** Source address of the request. */
  remoteAddress: string | undefined;
  /** Host name the client used (no port). */
  host: string | undefined;
  /** A request cookie's value. */
  cookie(name: string): string | undefined;
  /** A request header's value (first, when repeated). */
  header(name: string): string | undefined;
  /** Sets a response cookie: HttpOnly, Secure, SameSite=Strict, Path=/ unless `o` says otherwise. */
  setCookie(name: string, value: string, o?: { maxAge?: number; expires?: Date }): void;
  /** Aborted when the client goes away (for streams). */
  signal: AbortSignal;
}

export interface Route<B = unknown> {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  summary: string;
  /**
   * "admin": bearer admin token, or a console session cookie; "metrics": the metrics token or the
   * admin token; "joinKey": the body carries a join key; "none": public.
   */
  auth: "admin" | "metrics" | "joinKey" | "none";
  /**
   * Set for routes strangers call (no credentials, or only a join key in the body): the server
   * rate-limits them per source address, and answers every refusal but a 400 with its stable code
   * and a generic message, logging the detail and counting it under `endpoint` and its reason.
   */
  stranger?: { endpoint: string };
  /**
   * What the route answers: JSON (default); "text/plain" (a string; `contentType` may refine it);
   * "text/event-stream" (the handler returns a readable stream of server-sent events); "file" (a
   * string, buffer or readable stream sent as it is, of the media type `contentType` names, by
   * default application/octet-stream).
   */
  produces?: "text/plain" | "text/event-stream" | "file";
  contentType?: () => string;
  /** The body the server parses before the handler runs; a route without one gets none. */
  body?: RouteBody<B>;
  /** For "text/event-stream", the schema of one event (its `event`, `data`, `id`, `retry` fields). */
  response: z.ZodType;
  status?: number;
  /** Error statuses the handler itself answers beyond what `auth`, the body and path parameters imply (documented as ApiError). */
  errors?: readonly number[];
  handler(ctx: RouteContext<B>): Promise<unknown>;
}

/** A route whose handler's `ctx.body` has its body schema's type. */
export function route<B = undefined>(r: Route<B>): Route {
  return r;
}

export interface ApiServices {
  joinKeys: JoinKeys;
  enrollment: Pick<Enrollment, "enroll">;
  /** Enrollment nonces for Azure attested documents. */
  attestor: Pick<InstanceAttestor, "issueNonce">;
  registry: NodeRegistry;
  identities: IdentityAllocator;
  policies: PolicyService;
  /** Services: catalog, VIPs, views with health and statistics, each node's compiled services. */
  services: ServiceCatalog;
  /**
   * Cloud inventory sync (on demand), done by the leader: asked of a follower, forwarded to it
   * unless `forwardedBy` (the FORWARDED_BY_HEADER of a request another controller forwarded) is set.
   */
  inventory: { sync(forwardedBy: string | undefined): Promise<InventorySyncResult> };
  /** Cloud inventory: stored instances and networks, per-account sync status, site routes. */
  planner: Pick<InventoryPlanner, "view">;
  /** Keyless join by instance identity. */
  enrollmentPolicies: EnrollmentPolicies;
  /** The CA pin and API URLs handed out with a new join key; undefined when the API is plain HTTP. */
  controllerInfo?: (ctx: RouteContext) => JoinKeyCreated["controller"];
  /** The process's counters (`GET /v1/counters`). */
  counters?: ControllerCounters;
  /** Whether a node's compiled policy is delivered (shown in node views). */
  policyDelivery?: (nodeId: string) => PolicyDelivery | undefined;
}

const CounterSnapshot = z.object({
  name: z.string(),
  help: z.string(),
  samples: z.array(z.object({ labels: z.record(z.string(), z.string()), value: z.number() })),
});

const Health = z.object({ status: z.literal("ok") });

export function apiRoutes(s: ApiServices): Route[] {
  const withDelivery = (n: NodeView): NodeView => {
    const d = s.policyDelivery?.(n.nodeId);
    return d ? { ...n, policyDelivery: d } : n;
  };
  return [
    { method: "GET", path: "/healthz", summary: "Liveness of the API", auth: "none", response: Health, handler: async () => ({ status: "ok" }) },
    route({
      method: "POST",
      path: "/v1/enroll",
      summary: "Enroll a node with a join key, or with an instance identity an enrollment policy admits; returns its overlay address and NATS credentials",
      auth: "joinKey",
      stranger: { endpoint: "enroll" },
      body: { schema: EnrollRequest, what: "enrollment request", screen: refuseAssignedFields, check: enrollRequestIssues },
      response: EnrollResponse,
      status: 201,
      handler: (ctx) => s.enrollment.enroll(ctx.body, { observedAddress: ctx.remoteAddress, apiHost: ctx.host }),
    }),
    route({
      method: "POST",
      path: "/v1/enroll/nonce",
      summary: "A single-use nonce for an Azure agent to have signed into its attested document (EnrollRequest.attestation); valid until expiresAt. The body is {}",
      auth: "none",
      stranger: { endpoint: "nonce" },
      body: { schema: z.object({}).strict(), what: "nonce request", emptyIsObject: true },
      response: EnrollNonce,
      status: 201,
      handler: () => s.attestor.issueNonce(),
    }),
    route({
      method: "POST",
      path: "/v1/keys",
      summary: "Create a join key (the secret is returned only here)",
      auth: "admin",
      body: { schema: JoinKeyCreateRequest, what: "join key request", emptyIsObject: true },
      response: JoinKeyCreated,
      status: 201,
      handler: async (ctx): Promise<JoinKeyCreated> => {
        const created = await s.joinKeys.create(ctx.body);
        const controller = s.controllerInfo?.(ctx);
        return controller ? { ...created, controller } : created;
      },
    }),
    { method: "GET", path: "/v1/keys", summary: "List join keys (never their secrets)", auth: "admin", response: z.array(JoinKeyInfo), handler: () => s.joinKeys.list() },
    {
      method: "DELETE",
      path: "/v1/keys/:id",
      summary: "Revoke a join key; nodes already enrolled with it stay",
      auth: "admin",
      response: JoinKeyInfo,
      handler: (ctx) => s.joinKeys.revoke(param(ctx, "id")),
    },
    { method: "GET", path: "/v1/identities", summary: "Identities: SPIFFE ID and the number the datapath uses", auth: "admin", response: z.array(Identity), handler: () => s.identities.list() },
    { method: "GET", path: "/v1/nodes", summary: "List nodes with liveness and whether their policy is delivered", auth: "admin", response: z.array(NodeView), handler: async () => (await s.registry.list()).map(withDelivery) },
    {
      method: "GET",
      path: "/v1/nodes/:id",
      summary: "One node, by id or name",
      auth: "admin",
      response: NodeView,
      handler: async (ctx) => withDelivery(await s.registry.resolve(param(ctx, "id"))),
    },
    {
      method: "DELETE",
      path: "/v1/nodes/:id",
      summary: "Delete a node (by id or name): it leaves every peer's WireGuard",
      auth: "admin",
      response: NodeView,
      handler: async (ctx) => s.registry.delete((await s.registry.resolve(param(ctx, "id"))).nodeId),
    },
    {
      method: "GET",
      path: "/v1/nodes/:id/policy",
      summary: "The policy map entries a node (by id or name) enforces: ingress rules whose destination is its identity",
      auth: "admin",
      response: NodePolicy,
      handler: (ctx) => s.policies.forNode(param(ctx, "id")),
    },
    route({
      method: "PUT",
      path: "/v1/policies/:name",
      summary: "Create or replace a policy; the name in the body must match the path. Unknown fields are refused",
      auth: "admin",
      body: { schema: Policy, what: "policy", check: policyIssues },
      response: Policy,
      handler: (ctx) => s.policies.apply(param(ctx, "name"), ctx.body),
    }),
    { method: "GET", path: "/v1/policies", summary: "List policies, by name", auth: "admin", response: z.array(Policy), handler: () => s.policies.list() },
    { method: "GET", path: "/v1/policies/:name", summary: "One policy", auth: "admin", response: Policy, handler: (ctx) => s.policies.get(param(ctx, "name")) },
    {
      method: "DELETE",
      path: "/v1/policies/:name",
      summary: "Delete a policy; returns what it was",
      auth: "admin",
      response: Policy,
      handler: (ctx) => s.policies.delete(param(ctx, "name")),
    },
    route({
      method: "PUT",
      path: "/v1/services/:namespace/:name",
      summary: "Create or replace a service (name, ports, backends, algorithm, locality, health check, rate limit); the namespace and name in the body must match the path. Returns it with its VIP",
      auth: "admin",
      body: { schema: Service, what: "service" },
      response: ServiceRecord,
      handler: (ctx) => s.services.apply(param(ctx, "namespace"), param(ctx, "name"), ctx.body),
    }),
    { method: "GET", path: "/v1/services", summary: "Every service with its VIP, DNS name and backends (site, health, weight, connections, latency)", auth: "admin", response: z.array(ServiceView), handler: () => s.services.views() },
    {
      method: "GET",
      path: "/v1/services/:namespace/:name",
      summary: "One service with its VIP, DNS name and backends: locality, weight and share, health, active connections, connects, failures, latency, passive ejections",
      auth: "admin",
      response: ServiceView,
      handler: (ctx) => s.services.view(param(ctx, "namespace"), param(ctx, "name")),
    },
    {
      method: "DELETE",
      path: "/v1/services/:namespace/:name",
      summary: "Delete a service and release its VIP; returns what it was",
      auth: "admin",
      response: ServiceRecord,
      handler: (ctx) => s.services.delete(param(ctx, "namespace"), param(ctx, "name")),
    },
    {
      method: "GET",
      path: "/v1/nodes/:id/services",
      summary: "What a node (by id or name) gets in weft-node-services: the services its identities may call, with the backends policy lets each reach, and the health checks it runs",
      auth: "admin",
      response: NodeServicesRecord,
      handler: (ctx) => s.services.forNode(param(ctx, "id")),
    },
    route({
      method: "PUT",
      path: "/v1/enrollment-policies/:name",
      summary: "Create or replace an enrollment policy (keyless join for inventory instances matching its selector); the name in the body must match the path",
      auth: "admin",
      body: { schema: EnrollmentPolicy, what: "enrollment policy" },
      response: EnrollmentPolicy,
      handler: (ctx) => s.enrollmentPolicies.apply(param(ctx, "name"), ctx.body),
    }),
    { method: "GET", path: "/v1/enrollment-policies", summary: "List enrollment policies, by name", auth: "admin", response: z.array(EnrollmentPolicy), handler: () => s.enrollmentPolicies.list() },
    { method: "GET", path: "/v1/enrollment-policies/:name", summary: "One enrollment policy", auth: "admin", response: EnrollmentPolicy, handler: (ctx) => s.enrollmentPolicies.get(param(ctx, "name")) },
    {
      method: "DELETE",
      path: "/v1/enrollment-policies/:name",
      summary: "Delete an enrollment policy; nodes enrolled through it stay. Returns what it was",
      auth: "admin",
      response: EnrollmentPolicy,
      handler: (ctx) => s.enrollmentPolicies.delete(param(ctx, "name")),
    },
    {
      method: "GET",
      path: "/v1/inventory",
      summary: "Cloud inventory: instances (with the node bound to each), networks, each account's last sync, site routes and overlapping CIDRs",
      auth: "admin",
      response: InventoryView,
      handler: () => s.planner.view(),
    },
    {
      method: "GET",
      path: "/v1/counters",
      summary: "The controller's counters: refusals by endpoint and reason, undelivered node policies, released identities",
      auth: "admin",
      response: z.array(CounterSnapshot),
      handler: async () => s.counters?.read() ?? [],
    },
    route({
      method: "POST",
      path: "/v1/inventory/sync",
      summary: "Sync every configured cloud account now; waits for the sync and returns each account's result (changes, removals, held back, issues)",
      auth: "admin",
      body: { schema: InventorySyncRequest, what: "inventory sync request", emptyIsObject: true },
      response: InventorySyncResult,
      handler: (ctx) => s.inventory.sync(ctx.header(FORWARDED_BY_HEADER)),
    }),
  ];
}

function param(ctx: Pick<RouteContext, "params">, name: string): string {
  return ctx.params[name] ?? "";
}

/** The media type a route answers with, without parameters (as OpenAPI names it). */
function mediaType(r: Route): string {
  if (r.produces === "file") return (r.contentType?.() ?? "application/octet-stream").split(";")[0]?.trim() ?? "application/octet-stream";
  return r.produces ?? "application/json";
}

/** The OpenAPI 3.0 document for `routes`. */
export function openApiDocument(routes: readonly Route[], version: string): Record<string, unknown> {
  const schema = (t: z.ZodType, io: "input" | "output") => z.toJSONSchema(t, { target: "openapi-3.0", io, unrepresentable: "any" });
  const errorResponse = { description: "Error", content: { "application/json": { schema: schema(ApiError, "output") } } };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const oaPath = r.path.replace(/:([a-z]+)/g, "{$1}");
    const params = [...r.path.matchAll(/:([a-z]+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    paths[oaPath] ??= {};
    const security = r.auth === "admin" ? [{ adminToken: [] }, { consoleSession: [] }] : r.auth === "metrics" ? [{ metricsToken: [] }, { adminToken: [] }] : undefined;
    paths[oaPath][r.method.toLowerCase()] = {
      summary: r.summary,
      ...(params.length ? { parameters: params } : {}),
      ...(security ? { security } : {}),
      ...(r.body ? { requestBody: { required: !r.body.emptyIsObject, content: { "application/json": { schema: schema(r.body.schema, "input") } } } } : {}),
      responses: {
        [String(r.status ?? 200)]: { description: "OK", content: { [mediaType(r)]: { schema: schema(r.response, "output") } } },
        ...(r.auth === "admin" || r.auth === "metrics" ? { "401": errorResponse } : {}),
        ...(r.auth === "admin" && r.method !== "GET" ? { "403": errorResponse } : {}),
        ...(r.auth === "joinKey" ? { "403": errorResponse, "409": errorResponse } : {}),
        ...(r.body || r.path.includes(":") ? { "400": errorResponse } : {}),
        // The server's own refusals of a body (server.ts): over BODY_LIMIT, not application/json.
        ...(r.body ? { "413": errorResponse, "415": errorResponse } : {}),
        ...(r.path.includes(":") ? { "404": errorResponse } : {}),
        // Strangers' routes are rate-limited per source address (server.ts): 429 with Retry-After.
        ...(r.stranger ? { "429": errorResponse } : {}),
        ...Object.fromEntries((r.errors ?? []).map((code) => [String(code), errorResponse])),
      },
    };
  }
  // Served by the server itself, beside the table.
  paths["/openapi.json"] = {
    get: { summary: "This OpenAPI document", responses: { "200": { description: "OK", content: { "application/json": { schema: { type: "object" } } } } } },
  };
  return {
    openapi: "3.0.3",
    info: { title: "Weft controller API", version, description: "Join keys, enrollment, nodes, identities, policies and services of a Weft overlay." },
    components: {
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer", description: "The controller's admin token" },
        metricsToken: { type: "http", scheme: "bearer", description: "The controller's metrics token (reads /metrics only)" },
        consoleSession: {
          type: "apiKey",
          in: "cookie",
          name: "weft_session",
          description: "A console session from POST /console/login; requests other than GET also need its CSRF token in the X-Weft-CSRF header",
        },
      },
    },
    paths,
  };
}
