/**
 * Azure's Instance Metadata Service as a VM sees it at 169.254.169.254: plain HTTP,
 * `GET /metadata/instance?api-version=…` with the header `Metadata: true` (400 without it, and
 * for any request carrying X-Forwarded-For, as the real service does). The caller is identified
 * by its source address (SimStore.byAddress), so each lab VM reads its own document.
 *
 *   GET /metadata/instance            {compute, network}
 *   GET /metadata/instance/compute    compute only
 *   GET /metadata/instance/network    network only
 *   GET /metadata/attested/document   {"encoding": "pkcs7", "signature"}: the signed vmId,
 *       subscriptionId, nonce (query `nonce`, up to 32 letters and digits; the time when absent),
 *       timeStamp {createdOn, expiresOn} (6 h), plan, sku, licenseType (azure/attested.ts)
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../admin.js";
import type { SimInstance, SimStore } from "../store.js";
import { ATTESTED_LIFETIME_MS, azureTimestamp, type AzureAttestedSigner } from "./attested.js";
import { type ArmScope, macOf, resourceGroupOf, subnetCidrOf, vmResourceId } from "./resources.js";

export interface ImdsOptions extends ArmScope {
  store: SimStore;
  /** Signs attested documents. */
  attested: AzureAttestedSigner;
}

/** The address a request came from, without the IPv4-mapped prefix. */
export function callerAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
}

export async function handleImds(req: IncomingMessage, res: ServerResponse, o: ImdsOptions): Promise<void> {
  const url = new URL(req.url ?? "/", "http://169.254.169.254");
  if (req.headers["x-forwarded-for"] !== undefined) return sendJson(res, 400, { error: "Bad request. Request must not contain X-Forwarded-For header." });
  if ((req.headers.metadata ?? "").toString().toLowerCase() !== "true") {
    return sendJson(res, 400, { error: "Bad request. Required metadata header not specified" });
  }
  if (!url.searchParams.get("api-version")) {
    return sendJson(res, 400, { error: "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds", "newest-versions": ["2021-02-01"] });
  }
  const path = url.pathname.replace(/\/+$/, "");
  if (req.method !== "GET" || !["/metadata/instance", "/metadata/instance/compute", "/metadata/instance/network", "/metadata/attested/document"].includes(path)) {
    return sendJson(res, 404, { error: "Not found" });
  }
  const address = callerAddress(req);
  const i = o.store.byAddress(address);
  if (!i || i.state === "terminated") return sendJson(res, 404, { error: `Not found. The simulator has no running instance at ${address}` });
  if (path === "/metadata/attested/document") {
    const nonce = url.searchParams.get("nonce");
    if (nonce !== null && !/^[A-Za-z0-9]{1,32}$/.test(nonce)) return sendJson(res, 400, { error: "Bad request. Nonce must be up to 32 alphanumeric characters." });
    return sendJson(res, 200, { encoding: "pkcs7", signature: await attestedSignature(o, i, nonce) });
  }
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

/** The attested document's content, signed; `createdOn` as many seconds ago as the store's identity age. */
async function attestedSignature(o: ImdsOptions, i: SimInstance, nonce: string | null): Promise<string> {
  const created = new Date(Date.now() - o.store.identityAgeSeconds * 1000);
  const stamp = created.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const content = {
    licenseType: "",
    nonce: nonce ?? stamp,
    plan: { name: "", product: "", publisher: "" },
    sku: i.extra?.sku ?? "",
    subscriptionId: o.subscriptionId,
    timeStamp: { createdOn: azureTimestamp(created), expiresOn: azureTimestamp(new Date(created.getTime() + ATTESTED_LIFETIME_MS)) },
    vmId: i.id,
  };
  return o.attested.sign(JSON.stringify(content), created);
}
