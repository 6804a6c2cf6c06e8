/**
 * The GCE metadata server (metadata.google.internal, 169.254.169.254) for the simulated fleet.
 * It knows who asks by the caller's source address (SimStore.byAddress), as the real one knows
 * its VM; it answers only with `Metadata-Flavor: Google` (403 otherwise, and for requests carrying
 * `X-Forwarded-For`), in text, with `Metadata-Flavor: Google` on the response.
 *
 *   /computeMetadata/v1/instance/id | name | hostname | zone | machine-type
 *   /computeMetadata/v1/instance/network-interfaces/0/ip | network | access-configs/0/external-ip
 *   /computeMetadata/v1/project/project-id | numeric-project-id
 *   /computeMetadata/v1/instance/service-accounts/default/identity?audience=…[&format=full]
 *       an RS256 identity token (gcp/identity.ts); 400 without an audience
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SimInstance, SimStore } from "../store.js";
import type { GcpIdentitySigner } from "./identity.js";
import { gceStatus, numericId, zoneOf } from "./render.js";

export interface MetadataContext {
  project: string;
  projectNumber: string;
  store: SimStore;
  /** Signs identity tokens. */
  identity: GcpIdentitySigner;
}

const PREFIX = "/computeMetadata/v1/";

function text(res: ServerResponse, status: number, body: string, contentType = "application/text"): void {
  res.writeHead(status, { "metadata-flavor": "Google", "content-type": contentType, server: "Metadata Server for VM" }).end(body);
}

/** "::ffff:10.0.0.5" → "10.0.0.5". */
export function callerAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
}

function instanceValue(ctx: MetadataContext, i: SimInstance, key: string): string | undefined {
  const zone = zoneOf(i);
  switch (key) {
    case "instance/id":
      return numericId(i.id);
    case "instance/name":
      return i.name;
    case "instance/hostname":
      return `${i.name}.${zone}.c.${ctx.project}.internal`;
    case "instance/zone":
      return `projects/${ctx.projectNumber}/zones/${zone}`;
    case "instance/machine-type":
      return `projects/${ctx.projectNumber}/machineTypes/${i.extra?.machineType ?? "e2-medium"}`;
    case "instance/network-interfaces/0/ip":
      return i.privateIp;
    case "instance/network-interfaces/0/network":
      return `projects/${ctx.projectNumber}/networks/${i.network}`;
    case "instance/network-interfaces/0/access-configs/0/external-ip":
      return i.publicIp;
    case "project/project-id":
      return ctx.project;
    case "project/numeric-project-id":
      return ctx.projectNumber;
    default:
      return undefined;
  }
}

export function handleMetadata(req: IncomingMessage, res: ServerResponse, ctx: MetadataContext): void {
  const url = new URL(req.url ?? "/", "http://metadata.google.internal");
  if (req.headers["metadata-flavor"] !== "Google" || req.headers["x-forwarded-for"] !== undefined) {
    text(res, 403, `Your client does not have permission to get URL ${url.pathname} from this server. Missing Metadata-Flavor:Google header.\n`, "text/html; charset=UTF-8");
    return;
  }
  if (req.method !== "GET" || !url.pathname.startsWith(PREFIX)) {
    text(res, 404, "Not Found\n", "text/html; charset=UTF-8");
    return;
  }
  const addr = callerAddress(req);
  const inst = ctx.store.byAddress(addr);
  if (!inst || gceStatus(inst) === undefined) {
    text(res, 404, `no simulated instance has address ${addr}\n`, "text/plain; charset=UTF-8");
    return;
  }
  const key = url.pathname.slice(PREFIX.length).replace(/\/$/, "");
  if (key === "instance/service-accounts/default/identity") {
    const audience = url.searchParams.get("audience");
    if (!audience) {
      text(res, 400, "non-empty audience parameter required\n");
      return;
    }
    const format = url.searchParams.get("format") ?? "standard";
    ctx.identity
      .token({
        audience,
        full: format === "full",
        instanceId: numericId(inst.id),
        instanceName: inst.name,
        projectId: ctx.project,
        projectNumber: ctx.projectNumber,
        zone: zoneOf(inst),
        createdAt: new Date(inst.launchedAt),
        issuedAt: new Date(Date.now() - ctx.store.identityAgeSeconds * 1000),
      })
      .then(
        (token) => text(res, 200, token),
        (err: unknown) => text(res, 500, `signing failed: ${(err as Error).message}\n`),
      );
    return;
  }
  const value = instanceValue(ctx, inst, key);
  if (value === undefined) {
    text(res, 404, "Not Found\n", "text/html; charset=UTF-8");
    return;
  }
  text(res, 200, value);
}
