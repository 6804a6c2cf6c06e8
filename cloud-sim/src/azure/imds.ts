/**
 * Azure's Instance Metadata Service as a VM sees it at 169.254.169.254: plain HTTP,
 * `GET /metadata/instance?api-version=…` with the header `Metadata: true` (400 without it, and
 * for any request carrying X-Forwarded-For, as the real service does). The caller is identified
 * by its source address (SimStore.byAddress), so each lab VM reads its own document.
 *
 *   GET /metadata/instance            {compute, network}
 *   GET /metadata/instance/compute    compute only
 *   GET /metadata/instance/network    network only
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../admin.js";
import type { SimInstance, SimStore } from "../store.js";
import { type ArmScope, macOf, resourceGroupOf, subnetCidrOf, vmResourceId } from "./resources.js";

export interface ImdsOptions extends ArmScope {
  store: SimStore;
}

/** The address a request came from, without the IPv4-mapped prefix. */
export function callerAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
}

export function handleImds(req: IncomingMessage, res: ServerResponse, o: ImdsOptions): void {
  const url = new URL(req.url ?? "/", "http://169.254.169.254");
  if (req.headers["x-forwarded-for"] !== undefined) return sendJson(res, 400, { error: "Bad request. Request must not contain X-Forwarded-For header." });
  if ((req.headers.metadata ?? "").toString().toLowerCase() !== "true") {
    return sendJson(res, 400, { error: "Bad request. Required metadata header not specified" });
  }
  if (!url.searchParams.get("api-version")) {
    return sendJson(res, 400, { error: "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds", "newest-versions": ["2021-02-01"] });
  }
  const path = url.pathname.replace(/\/+$/, "");
  if (req.method !== "GET" || !["/metadata/instance", "/metadata/instance/compute", "/metadata/instance/network"].includes(path)) {
    return sendJson(res, 404, { error: "Not found" });
  }
  const address = callerAddress(req);
  const i = o.store.byAddress(address);
  if (!i || i.state === "terminated") return sendJson(res, 404, { error: `Not found. The simulator has no running instance at ${address}` });
  const doc = instanceDocument(o, i);
  if (path.endsWith("/compute")) return sendJson(res, 200, doc.compute);
  if (path.endsWith("/network")) return sendJson(res, 200, doc.network);
  sendJson(res, 200, doc);
}

/** The instance document, in the field names and string-typed values IMDS uses. */
export function instanceDocument(o: ImdsOptions, i: SimInstance): { compute: Record<string, unknown>; network: Record<string, unknown> } {
  const tagsList = Object.entries(i.tags).map(([name, value]) => ({ name, value }));
  const cidr = subnetCidrOf(o.store, i);
  const [address, prefix] = cidr ? cidr.split("/") : [];
  return {
    compute: {
      azEnvironment: "AzurePublicCloud",
      location: i.region,
      name: i.name,
      osType: "Linux",
      provider: "Microsoft.Compute",
      resourceGroupName: resourceGroupOf(o, i),
      resourceId: vmResourceId(o, i),
      subscriptionId: o.subscriptionId,
      tags: tagsList.map((t) => `${t.name}:${t.value}`).join(";"),
      tagsList,
      vmId: i.id,
      vmScaleSetName: "",
      vmSize: i.extra?.vmSize ?? "Standard_B2s",
      zone: i.zone ?? "",
    },
    network: {
      interface: [
        {
          ipv4: {
            ipAddress: [{ privateIpAddress: i.privateIp, publicIpAddress: i.publicIp ?? "" }],
            subnet: address && prefix ? [{ address, prefix }] : [],
          },
          ipv6: { ipAddress: [] },
          macAddress: macOf(i).replaceAll("-", ""),
        },
      ],
    },
  };
}
