/**
 * The GCE simulator: a plain-HTTP server speaking enough of the Compute Engine v1 REST API
 * (aggregated instances, networks, aggregated subnetworks) for the unmodified
 * `@google-cloud/compute` clients, plus a GCE metadata server on its own listener. Both render
 * one shared SimStore; faults come from the shared Faults (a GcpFault picks the HTTP status);
 * the /_sim/ admin routes are served on the API listener, with one GCP-only addition:
 *
 *   PUT /_sim/gcp/unreachable   {"scopes": ["zones/asia-east1-a", …]}  scopes answering as unreachable
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { JSONWebKeySet } from "jose";
import { handleAdmin, readBody, SimAdmin, sendJson } from "../admin.js";
import { Faults } from "../faults.js";
import { SimStore } from "../store.js";
import { gceError, handleComputeApi, type GcpApiContext } from "./api.js";
import { createGcpIdentitySigner } from "./identity.js";
import { handleMetadata } from "./metadata.js";
import { numericId } from "./render.js";
import { baseUrl as schemeUrl, closeServer as close, listen } from "../listen.js";

export { type GcpFault } from "./api.js";
export { createGcpIdentitySigner, GOOGLE_ISSUER, type GcpIdentitySigner, type GceTokenClaims } from "./identity.js";
export { numericId as gceNumericId, regionOf as gceRegionOf, renderInstance as renderGceInstance } from "./render.js";

export interface GcpSimOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Also serve the metadata server (the lab binds it to 169.254.169.254:80). */
  metadata?: { host: string; port: number };
  project: string;
  /** The project number in metadata answers (default: derived from the project id). */
  projectNumber?: string;
  store?: SimStore;
  faults?: Faults;
  /** Server-side cap on results per page (default 500, GCE's maximum). */
  pageSize?: number;
  /** Zones always present in aggregated pages (default us-central1-a/b/c, europe-west1-b). */
  zones?: string[];
  /** Accept only this bearer token (default: any bearer token). */
  accessToken?: string;
}

export interface GcpSim {
  /** Base URL of the API listener, e.g. http://127.0.0.1:41234 (give it to GcpInventory as apiEndpoint). */
  url: string;
  /** Base URL of the metadata listener, when one was asked for. */
  metadataUrl: string | undefined;
  project: string;
  projectNumber: string;
  store: SimStore;
  faults: Faults;
  admin: SimAdmin;
  /** Scopes ("zones/x", "regions/y") that answer as unreachable; change it while a test runs. */
  unreachable: Set<string>;
  /** The keys identity tokens are signed with: trust this JWKS in place of Google's. */
  identity: { jwks: JSONWebKeySet };
  close(): Promise<void>;
}

async function gcpAdmin(req: IncomingMessage, res: ServerResponse, ctx: GcpApiContext): Promise<boolean> {
  if (req.url?.split("?")[0] !== "/_sim/gcp/unreachable" || req.method !== "PUT") return false;
  try {
    const body = JSON.parse((await readBody(req)) || "{}") as { scopes?: unknown };
    if (!Array.isArray(body.scopes) || !body.scopes.every((s) => typeof s === "string")) throw new SyntaxError("scopes: must be a list of strings");
    ctx.unreachable.clear();
    for (const s of body.scopes as string[]) ctx.unreachable.add(s);
    sendJson(res, 200, { scopes: [...ctx.unreachable] });
  } catch (err) {
    sendJson(res, 400, { error: (err as Error).message });
  }
  return true;
}

export async function startGcpSim(o: GcpSimOptions): Promise<GcpSim> {
  const store = o.store ?? new SimStore();
  const faults = o.faults ?? new Faults();
  const projectNumber = o.projectNumber ?? numericId(`project:${o.project}`).slice(0, 12);
  const ctx: GcpApiContext = {
    project: o.project,
    store,
    faults,
    pageSize: o.pageSize ?? 500,
    zones: o.zones ?? ["us-central1-a", "us-central1-b", "us-central1-c", "europe-west1-b"],
    unreachable: new Set(),
    ...(o.accessToken === undefined ? {} : { accessToken: o.accessToken }),
  };
  const api = createServer((req, res) => {
    void (async () => {
      if (await gcpAdmin(req, res, ctx)) return;
      if (await handleAdmin(req, res, store, faults)) return;
      await handleComputeApi(req, res, ctx);
    })().catch((err: unknown) => {
      if (!res.headersSent) gceError(res, 500, `simulator: ${(err as Error).message}`, "internalError");
    });
  });
  const apiAddr = await listen(api, o.host ?? "127.0.0.1", o.port ?? 0);
  let meta: Server | undefined;
  let metadataUrl: string | undefined;
  const identity = await createGcpIdentitySigner();
  if (o.metadata) {
    const server = createServer((req, res) => handleMetadata(req, res, { project: o.project, projectNumber, store, identity }));
    try {
      metadataUrl = schemeUrl("http", await listen(server, o.metadata.host, o.metadata.port));
    } catch (err) {
      await close(api);
      throw err;
    }
    meta = server;
  }
  const url = schemeUrl("http", apiAddr);
  return {
    url,
    metadataUrl,
    project: o.project,
    projectNumber,
    store,
    faults,
    admin: new SimAdmin(url),
    unreachable: ctx.unreachable,
    identity: { jwks: identity.jwks },
    close: async () => {
      await Promise.all([close(api), meta ? close(meta) : Promise.resolve()]);
    },
  };
}
