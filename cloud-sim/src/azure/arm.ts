/**
 * The ARM endpoints the inventory adapter reads, served the way management.azure.com serves
 * them: subscription-wide lists as `{value, nextLink}` with an absolute nextLink on the
 * simulator's own host (`$skiptoken` paging), ARM's error body `{error: {code, message}}`, a bearer
 * token required, and the shared Faults applied per request (pages included).
 *
 * Operations (the names Faults and /_sim/calls use):
 *   virtualMachines.listAll             GET …/providers/Microsoft.Compute/virtualMachines
 *   virtualMachines.listAll?statusOnly  the same with statusOnly=true (run-time status only)
 *   networkInterfaces.listAll           GET …/providers/Microsoft.Network/networkInterfaces
 *   publicIPAddresses.listAll           GET …/providers/Microsoft.Network/publicIPAddresses
 *   virtualNetworks.listAll             GET …/providers/Microsoft.Network/virtualNetworks
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../admin.js";
import type { Fault, Faults } from "../faults.js";
import type { SimStore } from "../store.js";
import { type ArmScope, renderNic, renderPublicIp, renderVm, renderVmStatus, renderVnet } from "./resources.js";

export interface ArmHandlerOptions extends ArmScope {
  store: SimStore;
  faults: Faults;
  pageSize: number;
  /** Base URL for nextLink when the request has no Host header. */
  fallbackBaseUrl: () => string;
}

type Lister = (o: ArmHandlerOptions, statusOnly: boolean) => unknown[];

const LISTS: Record<string, { operation: (statusOnly: boolean) => string; list: Lister }> = {
  "microsoft.compute/virtualmachines": {
    operation: (statusOnly) => (statusOnly ? "virtualMachines.listAll?statusOnly" : "virtualMachines.listAll"),
    list: (o, statusOnly) => o.store.list().map((i) => (statusOnly ? renderVmStatus(o, i) : renderVm(o, i))),
  },
  "microsoft.network/networkinterfaces": {
    operation: () => "networkInterfaces.listAll",
    list: (o) => o.store.list().map((i) => renderNic(o, o.store, i)),
  },
  "microsoft.network/publicipaddresses": {
    operation: () => "publicIPAddresses.listAll",
    list: (o) => o.store.list().filter((i) => i.publicIp).map((i) => renderPublicIp(o, i)),
  },
  "microsoft.network/virtualnetworks": {
    operation: () => "virtualNetworks.listAll",
    list: (o) => [...o.store.networks.values()].sort((a, b) => a.id.localeCompare(b.id)).map((n) => renderVnet(o, n)),
  },
};

export function armError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, { "x-ms-request-id": randomUUID(), ...headers });
}

/** Serves one ARM request (anything not under /_sim/). */
export async function handleArm(req: IncomingMessage, res: ServerResponse, o: ArmHandlerOptions): Promise<void> {
  const url = new URL(req.url ?? "/", "https://sim");
  // /subscriptions/{sub}/providers/{namespace}/{type}; ARM matches paths case-insensitively.
  const m = /^\/subscriptions\/([^/]+)\/providers\/([^/]+\/[^/]+)\/?$/i.exec(url.pathname);
  const route = m ? LISTS[m[2]!.toLowerCase()] : undefined;
  if (req.method !== "GET" || !m || !route) {
    return armError(res, 404, "InvalidResourceType", `The simulator does not serve ${req.method} ${url.pathname}.`);
  }
  if (!url.searchParams.get("api-version")) {
    return armError(res, 400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.");
  }
  if (!/^Bearer \S+/i.test(req.headers.authorization ?? "")) {
    return armError(res, 401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.");
  }
  const statusOnly = (url.searchParams.get("statusOnly") ?? "").toLowerCase() === "true";
  const fault = o.faults.take(route.operation(statusOnly));
  if (fault && (await applyFault(res, fault, o))) return;
  if (decodeURIComponent(m[1]!).toLowerCase() !== o.subscriptionId.toLowerCase()) {
    return armError(res, 404, "SubscriptionNotFound", `The subscription '${m[1]}' could not be found.`);
  }

  const all = route.list(o, statusOnly);
  const skip = Math.max(0, Number.parseInt(url.searchParams.get("$skiptoken") ?? "0", 10) || 0);
  const value = all.slice(skip, skip + o.pageSize);
  const body: { value: unknown[]; nextLink?: string } = { value };
  if (skip + o.pageSize < all.length) {
    const host = req.headers.host;
    const next = new URL(url.pathname, host ? `https://${host}` : o.fallbackBaseUrl());
    for (const [k, v] of url.searchParams) if (k !== "$skiptoken") next.searchParams.set(k, v);
    next.searchParams.set("$skiptoken", String(skip + o.pageSize));
    body.nextLink = next.toString();
  }
  sendJson(res, 200, body, { "x-ms-request-id": randomUUID(), "x-ms-ratelimit-remaining-subscription-reads": "11999" });
}

/** Answers for the fault (true) or, for "slow", waits and lets the call proceed (false). */
async function applyFault(res: ServerResponse, f: Fault, o: ArmHandlerOptions): Promise<boolean> {
  switch (f.kind) {
    case "slow":
      await new Promise((r) => setTimeout(r, f.delayMs ?? 1000));
      return false;
    case "throttle": {
      const after = String(f.retryAfterSeconds ?? 1);
      armError(
        res,
        429,
        "SubscriptionRequestsThrottled",
        `Number of 'read' requests for subscription '${o.subscriptionId}' exceeded. Please try again after '${after}' seconds.`,
        { "retry-after": after, "x-ms-ratelimit-remaining-subscription-reads": "0" },
      );
      return true;
    }
    case "server-error":
      // With a Retry-After it is ARM's 503 ServiceUnavailable; without, a plain 500.
      if (f.retryAfterSeconds !== undefined) {
        armError(res, 503, "ServiceUnavailable", "The service is temporarily unavailable. Please try again later.", { "retry-after": String(f.retryAfterSeconds) });
      } else {
        armError(res, 500, "InternalServerError", "Encountered internal server error. Please try again.");
      }
      return true;
    case "auth":
      armError(res, 401, "InvalidAuthenticationToken", "The access token is invalid.", {
        "www-authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The access token is invalid."',
      });
      return true;
  }
}
