/**
 * The Compute Engine v1 REST routes the inventory adapter reads, with GCE's paging and error
 * bodies:
 *
 *   GET /compute/v1/projects/{project}/aggregated/instances    instances.aggregatedList
 *   GET /compute/v1/projects/{project}/global/networks         networks.list
 *   GET /compute/v1/projects/{project}/aggregated/subnetworks  subnetworks.aggregatedList
 *
 * Aggregated pages hold every known scope: the ones with results on this page carry them, the
 * others a `NO_RESULTS_ON_PAGE` warning, as GCE does. `maxResults` (≤ 500) and the simulator's
 * page size bound a page; `nextPageToken` is opaque. With `returnPartialSuccess=true`, scopes set
 * unreachable are left out and named in `unreachables`; without it the call fails with 503.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Fault, Faults } from "../faults.js";
import type { SimStore } from "../store.js";
import { API_BASE, regionOf, renderInstance, renderNetwork, renderSubnetwork, zoneOf } from "./render.js";

/** A Fault with the HTTP status to answer with: throttle 429|403, server-error 500|503, auth 401|403. */
export type GcpFault = Fault & { httpStatus?: number };

export interface GcpApiContext {
  project: string;
  store: SimStore;
  faults: Faults;
  /** Server-side cap on a page, whatever maxResults asks (default 500, GCE's own cap). */
  pageSize: number;
  /** Zones listed in every aggregated instances page besides those of the fleet. */
  zones: string[];
  /** Scopes ("zones/x", "regions/y") that answer as unreachable. */
  unreachable: Set<string>;
  /** When set, the only bearer token accepted. */
  accessToken?: string;
}

const MAX_RESULTS = 500;

/** An error in GCE's JSON shape (the `errors[]` list of the v1 API). */
export function gceError(res: ServerResponse, code: number, message: string, reason: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): void {
  const domain = reason === "rateLimitExceeded" ? "usageLimits" : "global";
  const body = { error: { code, message, errors: [{ message, domain, reason }], ...extra } };
  res.writeHead(code, { "content-type": "application/json; charset=UTF-8", ...headers }).end(JSON.stringify(body));
}

function sendList(res: ServerResponse, body: Record<string, unknown>): void {
  res.writeHead(200, { "content-type": "application/json; charset=UTF-8" }).end(JSON.stringify(body));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Answers with the fault, if one applies; false when the call should go ahead. */
async function applyFault(res: ServerResponse, f: GcpFault | undefined, op: string, project: string): Promise<boolean> {
  if (!f) return false;
  switch (f.kind) {
    case "slow":
      await sleep(f.delayMs ?? 1000);
      return false;
    case "throttle": {
      const headers: Record<string, string> = f.retryAfterSeconds === undefined ? {} : { "retry-after": String(f.retryAfterSeconds) };
      const status = f.httpStatus ?? 429;
      gceError(res, status, `Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'compute.googleapis.com' for consumer 'project:${project}'.`, "rateLimitExceeded", {}, headers);
      return true;
    }
    case "server-error":
      if ((f.httpStatus ?? 503) === 500) gceError(res, 500, "Internal Error", "internalError");
      else gceError(res, f.httpStatus ?? 503, "Backend Error", "backendError");
      return true;
    case "auth":
      if (f.httpStatus === 403) gceError(res, 403, `Required '${op.replace(/\..*/, "")}.list' permission for 'projects/${project}'`, "forbidden");
      else unauthenticated(res);
      return true;
  }
}

function unauthenticated(res: ServerResponse): void {
  const message =
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
  res.writeHead(401, { "content-type": "application/json; charset=UTF-8", "www-authenticate": 'Bearer realm="https://accounts.google.com/"' }).end(
    JSON.stringify({
      error: {
        code: 401,
        message,
        errors: [{ message: "Invalid Credentials", domain: "global", reason: "authError", location: "Authorization", locationType: "header" }],
        status: "UNAUTHENTICATED",
      },
    }),
  );
}

interface Page {
  offset: number;
  size: number;
}

/** Reads maxResults/pageToken; false (after answering 400) when they are invalid. */
function pageOf(url: URL, res: ServerResponse, cap: number): Page | false {
  const max = url.searchParams.get("maxResults");
  let size = Math.min(MAX_RESULTS, cap);
  if (max !== null) {
    const n = Number(max);
    if (!Number.isInteger(n) || n < 0) return (gceError(res, 400, `Invalid value for field 'maxResults': '${max}'. Must be a non-negative integer.`, "invalid"), false);
    if (n > 0) size = Math.min(size, n);
  }
  const token = url.searchParams.get("pageToken");
  if (!token) return { offset: 0, size };
  const m = /^o:(\d+)$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!m) return (gceError(res, 400, `Invalid value for field 'pageToken': '${token}'. Invalid page token.`, "invalid"), false);
  return { offset: Number(m[1]), size };
}

function nextToken(page: Page, total: number): string | undefined {
  const next = page.offset + page.size;
  return next < total ? Buffer.from(`o:${next}`, "utf8").toString("base64url") : undefined;
}

function noResults(scope: string): Record<string, unknown> {
  return { warning: { code: "NO_RESULTS_ON_PAGE", message: `There are no results for scope '${scope}' on this page.`, data: [{ key: "scope", value: scope }] } };
}

/** One aggregated page: `field` holds the results per scope; every other known scope is warned. */
function aggregate(scopes: string[], rows: { scope: string; body: Record<string, unknown> }[], field: string): Record<string, unknown> {
  const items: Record<string, Record<string, unknown>> = {};
  for (const s of scopes) items[s] = noResults(s);
  for (const r of rows) {
    const cur = items[r.scope];
    const list = cur && Array.isArray(cur[field]) ? (cur[field] as unknown[]) : [];
    list.push(r.body);
    items[r.scope] = { [field]: list };
  }
  return items;
}

function partial(url: URL, res: ServerResponse, ctx: GcpApiContext, scopes: string[]): { ok: boolean; unreachables: string[] } {
  const unreachables = scopes.filter((s) => ctx.unreachable.has(s));
  if (unreachables.length === 0) return { ok: true, unreachables };
  if (url.searchParams.get("returnPartialSuccess") !== "true") {
    gceError(res, 503, `The zone '${unreachables[0]}' is currently unavailable.`, "backendError");
    return { ok: false, unreachables };
  }
  return { ok: true, unreachables };
}

function aggregatedInstances(url: URL, res: ServerResponse, ctx: GcpApiContext, page: Page): void {
  const { project, store } = ctx;
  const scopeSet = new Set(ctx.zones.map((z) => `zones/${z}`));
  for (const i of store.instances.values()) scopeSet.add(`zones/${zoneOf(i)}`);
  for (const s of ctx.unreachable) if (s.startsWith("zones/")) scopeSet.add(s);
  const scopes = [...scopeSet].sort();
  const p = partial(url, res, ctx, scopes);
  if (!p.ok) return;
  const rows = store
    .list()
    .map((i) => ({ scope: `zones/${zoneOf(i)}`, id: i.id, body: renderInstance(project, i) }))
    .filter((r): r is { scope: string; id: string; body: Record<string, unknown> } => r.body !== undefined && !ctx.unreachable.has(r.scope))
    .sort((a, b) => a.scope.localeCompare(b.scope) || a.id.localeCompare(b.id));
  const slice = rows.slice(page.offset, page.offset + page.size);
  const body: Record<string, unknown> = {
    kind: "compute#instanceAggregatedList",
    id: `projects/${project}/aggregated/instances`,
    items: aggregate(scopes.filter((s) => !ctx.unreachable.has(s)), slice, "instances"),
    selfLink: `${API_BASE}/projects/${project}/aggregated/instances`,
  };
  const next = nextToken(page, rows.length);
  if (next) body.nextPageToken = next;
  if (p.unreachables.length) body.unreachables = p.unreachables;
  sendList(res, body);
}

function networks(res: ServerResponse, ctx: GcpApiContext, page: Page): void {
  const all = [...ctx.store.networks.values()].sort((a, b) => a.name.localeCompare(b.name));
  const body: Record<string, unknown> = {
    kind: "compute#networkList",
    id: `projects/${ctx.project}/global/networks`,
    items: all.slice(page.offset, page.offset + page.size).map((n) => renderNetwork(ctx.project, n)),
    selfLink: `${API_BASE}/projects/${ctx.project}/global/networks`,
  };
  const next = nextToken(page, all.length);
  if (next) body.nextPageToken = next;
  sendList(res, body);
}

function aggregatedSubnetworks(url: URL, res: ServerResponse, ctx: GcpApiContext, page: Page): void {
  const all = [...ctx.store.networks.values()]
    .flatMap((n) => n.subnets.map((s) => ({ scope: `regions/${regionOf(s.zone ?? n.region)}`, body: renderSubnetwork(ctx.project, n, s) })))
    .sort((a, b) => a.scope.localeCompare(b.scope) || String(a.body.name).localeCompare(String(b.body.name)));
  const scopeSet = new Set(ctx.zones.map((z) => `regions/${regionOf(z)}`));
  for (const r of all) scopeSet.add(r.scope);
  for (const s of ctx.unreachable) if (s.startsWith("regions/")) scopeSet.add(s);
  const scopes = [...scopeSet].sort();
  const p = partial(url, res, ctx, scopes);
  if (!p.ok) return;
  const rows = all.filter((r) => !ctx.unreachable.has(r.scope));
  const body: Record<string, unknown> = {
    kind: "compute#subnetworkAggregatedList",
    id: `projects/${ctx.project}/aggregated/subnetworks`,
    items: aggregate(scopes.filter((s) => !ctx.unreachable.has(s)), rows.slice(page.offset, page.offset + page.size), "subnetworks"),
    selfLink: `${API_BASE}/projects/${ctx.project}/aggregated/subnetworks`,
  };
  const next = nextToken(page, rows.length);
  if (next) body.nextPageToken = next;
  if (p.unreachables.length) body.unreachables = p.unreachables;
  sendList(res, body);
}

const ROUTES: { re: RegExp; op: string; run: (url: URL, res: ServerResponse, ctx: GcpApiContext, page: Page) => void }[] = [
  { re: /^\/compute\/v1\/projects\/([^/]+)\/aggregated\/instances$/, op: "instances.aggregatedList", run: aggregatedInstances },
  { re: /^\/compute\/v1\/projects\/([^/]+)\/global\/networks$/, op: "networks.list", run: (_u, res, ctx, page) => networks(res, ctx, page) },
  { re: /^\/compute\/v1\/projects\/([^/]+)\/aggregated\/subnetworks$/, op: "subnetworks.aggregatedList", run: aggregatedSubnetworks },
];

/** Handles a Compute API request (anything outside /_sim/). */
export async function handleComputeApi(req: IncomingMessage, res: ServerResponse, ctx: GcpApiContext): Promise<void> {
  const url = new URL(req.url ?? "/", "http://sim");
  const route = ROUTES.find((r) => r.re.test(url.pathname));
  if (!route || req.method !== "GET") {
    gceError(res, 404, `The requested URL ${url.pathname} was not found on this server.`, "notFound");
    return;
  }
  const auth = req.headers.authorization ?? "";
  const token = /^Bearer (.+)$/.exec(auth)?.[1];
  if (!token || (ctx.accessToken !== undefined && token !== ctx.accessToken)) {
    ctx.faults.calls.set(route.op, (ctx.faults.calls.get(route.op) ?? 0) + 1);
    unauthenticated(res);
    return;
  }
  if (await applyFault(res, ctx.faults.take(route.op), route.op, ctx.project)) return;
  const project = decodeURIComponent(route.re.exec(url.pathname)?.[1] ?? "");
  if (project !== ctx.project) {
    gceError(res, 404, `The resource 'projects/${project}' was not found`, "notFound");
    return;
  }
  const page = pageOf(url, res, ctx.pageSize);
  if (page === false) return;
  route.run(url, res, ctx, page);
}
