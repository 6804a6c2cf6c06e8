/**
 * A typed client for the controller's REST API, over TCP (http or https) or the
 * controller's local unix socket. Every non-2xx answer becomes an ApiRequestError
 * carrying the controller's message; `retryable` is true for network failures and 5xx.
 *
 * Over https the controller's certificate is checked against `caPem`, or against
 * the CA found by its pin `caHash` (see ca-pin.ts), or else the system's CAs.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { z } from "zod";
import { CaPinMismatchError, caHash, isTlsVerificationError, resolvePinnedCa } from "./ca-pin.js";
import { ApiError, EnrollmentPolicy, Identity, JoinKeyCreated, JoinKeyInfo, NodeView, type EnrollmentPolicyInput, type JoinKeyCreateRequest } from "./messages.js";
import { InventorySyncResult, InventoryView } from "./inventory.js";
import { NodePolicy, Policy, type PolicyInput } from "./policy.js";
import { NodeServicesRecord, ServiceRecord, ServiceView, type ServiceInput } from "./service.js";

export interface ControllerClientOptions {
  /** http(s)://host:port of the API; ignored when `socketPath` is set. */
  url?: string;
  /** For an https URL: the controller's CA certificate (PEM), the only CA trusted. */
  caPem?: string;
  /** For an https URL: the pin of the controller's CA (`sha256:…`, printed by `weft keys create`). */
  caHash?: string;
  /** The controller's unix socket (`<stateDir>/api.sock`). */
  socketPath?: string;
  adminToken?: string;
  timeoutMs?: number;
  /** Headers sent with every request (a call's own win). */
  headers?: Record<string, string>;
}

export class ApiRequestError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ApiRequestError";
  }
}

export interface RawResponse {
  status: number;
  body: unknown;
  text: string;
}

export class ControllerClient {
  /** The CA found by `caHash`, looked up once. */
  private pinnedCa: Promise<string> | undefined;

  constructor(private readonly opts: ControllerClientOptions) {
    if (!opts.url && !opts.socketPath) throw new Error("ControllerClient needs a url or a socketPath");
    if (opts.caHash !== undefined && !caHash.safeParse(opts.caHash).success) throw new Error(`caHash ${opts.caHash}: must be sha256: followed by 64 hex digits`);
    if (!opts.socketPath && opts.url && new URL(opts.url).protocol === "http:" && (opts.caHash || opts.caPem)) {
      throw new Error(`controller URL ${opts.url}: a CA pin needs an https:// URL`);
    }
  }

  createJoinKey(req: Partial<JoinKeyCreateRequest> = {}): Promise<JoinKeyCreated> {
    return this.call("POST", "/v1/keys", JoinKeyCreated, req);
  }
  listJoinKeys(): Promise<JoinKeyInfo[]> {
    return this.call("GET", "/v1/keys", z.array(JoinKeyInfo));
  }
  revokeJoinKey(id: string): Promise<JoinKeyInfo> {
    return this.call("DELETE", `/v1/keys/${encodeURIComponent(id)}`, JoinKeyInfo);
  }
  listIdentities(): Promise<Identity[]> {
    return this.call("GET", "/v1/identities", z.array(Identity));
  }
  listNodes(): Promise<NodeView[]> {
    return this.call("GET", "/v1/nodes", z.array(NodeView));
  }
  getNode(idOrName: string): Promise<NodeView> {
    return this.call("GET", `/v1/nodes/${encodeURIComponent(idOrName)}`, NodeView);
  }
  deleteNode(idOrName: string): Promise<NodeView> {
    return this.call("DELETE", `/v1/nodes/${encodeURIComponent(idOrName)}`, NodeView);
  }
  /** The policy map entries a node enforces under the current policies. */
  nodePolicy(idOrName: string): Promise<NodePolicy> {
    return this.call("GET", `/v1/nodes/${encodeURIComponent(idOrName)}/policy`, NodePolicy);
  }
  /** Create or replace the policy named in `policy`. */
  applyPolicy(policy: PolicyInput): Promise<Policy> {
    return this.call("PUT", `/v1/policies/${encodeURIComponent(policy.name)}`, Policy, policy);
  }
  listPolicies(): Promise<Policy[]> {
    return this.call("GET", "/v1/policies", z.array(Policy));
  }
  getPolicy(name: string): Promise<Policy> {
    return this.call("GET", `/v1/policies/${encodeURIComponent(name)}`, Policy);
  }
  deletePolicy(name: string): Promise<Policy> {
    return this.call("DELETE", `/v1/policies/${encodeURIComponent(name)}`, Policy);
  }
  /** The cloud inventory: instances, networks, account statuses, site routes, overlaps. */
  inventory(): Promise<InventoryView> {
    return this.call("GET", "/v1/inventory", InventoryView);
  }
  /** Sync every cloud account now; resolves when the sync is done. */
  syncInventory(timeoutMs = 600_000): Promise<InventorySyncResult> {
    return this.call("POST", "/v1/inventory/sync", InventorySyncResult, {}, timeoutMs);
  }
  /** Create or replace the service named in `service` (namespace and name); returns it with its VIP. */
  applyService(service: ServiceInput): Promise<ServiceRecord> {
    return this.call("PUT", `/v1/services/${encodeURIComponent(service.namespace)}/${encodeURIComponent(service.name)}`, ServiceRecord, service);
  }
  /** Every service with its backends (site, health, weight, connections, latency). */
  listServices(): Promise<ServiceView[]> {
    return this.call("GET", "/v1/services", z.array(ServiceView));
  }
  getService(namespace: string, name: string): Promise<ServiceView> {
    return this.call("GET", `/v1/services/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`, ServiceView);
  }
  deleteService(namespace: string, name: string): Promise<ServiceRecord> {
    return this.call("DELETE", `/v1/services/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`, ServiceRecord);
  }
  /** What a node gets in weft-node-services under the current services, policies and health. */
  nodeServices(idOrName: string): Promise<NodeServicesRecord> {
    return this.call("GET", `/v1/nodes/${encodeURIComponent(idOrName)}/services`, NodeServicesRecord);
  }
  /** Create or replace the enrollment policy named in `policy`. */
  applyEnrollmentPolicy(policy: EnrollmentPolicyInput): Promise<EnrollmentPolicy> {
    return this.call("PUT", `/v1/enrollment-policies/${encodeURIComponent(policy.name)}`, EnrollmentPolicy, policy);
  }
  listEnrollmentPolicies(): Promise<EnrollmentPolicy[]> {
    return this.call("GET", "/v1/enrollment-policies", z.array(EnrollmentPolicy));
  }
  getEnrollmentPolicy(name: string): Promise<EnrollmentPolicy> {
    return this.call("GET", `/v1/enrollment-policies/${encodeURIComponent(name)}`, EnrollmentPolicy);
  }
  deleteEnrollmentPolicy(name: string): Promise<EnrollmentPolicy> {
    return this.call("DELETE", `/v1/enrollment-policies/${encodeURIComponent(name)}`, EnrollmentPolicy);
  }

  /** `timeoutMs`: longest the socket may stay idle for this call (default: the client's). */
  async call<S extends z.ZodType>(method: string, path: string, schema: S, body?: unknown, timeoutMs?: number): Promise<z.infer<S>> {
    const res = await this.raw(method, path, body === undefined ? undefined : JSON.stringify(body), {}, timeoutMs);
    if (res.status < 200 || res.status >= 300) {
      const err = ApiError.safeParse(res.body);
      const message = err.success ? err.data.message : `HTTP ${res.status}: ${res.text.slice(0, 200)}`;
      throw new ApiRequestError(`${method} ${path}: ${message}`, res.status, err.success ? err.data.error : "http_error", res.status >= 500);
    }
    const parsed = schema.safeParse(res.body);
    if (!parsed.success) throw new ApiRequestError(`${method} ${path}: unexpected response body: ${parsed.error.message}`, res.status, "bad_response", false);
    return parsed.data;
  }

  /** Send a request as-is (any body text, any headers) and return what came back. */
  async raw(method: string, path: string, bodyText?: string, headers: Record<string, string> = {}, timeoutMs?: number): Promise<RawResponse> {
    const where = this.opts.socketPath ?? this.opts.url;
    const target = this.opts.socketPath ? { send: httpRequest, options: { socketPath: this.opts.socketPath } } : await this.tcpTarget(method, path);
    const allHeaders: Record<string, string> = { ...this.opts.headers, ...headers };
    if (this.opts.adminToken && !("authorization" in allHeaders)) allHeaders.authorization = `Bearer ${this.opts.adminToken}`;
    if (bodyText !== undefined) {
      allHeaders["content-type"] ??= "application/json";
      allHeaders["content-length"] = String(Buffer.byteLength(bodyText));
    }
    return new Promise((resolve, reject) => {
      const req = target.send({ ...target.options, method, path, headers: allHeaders, timeout: timeoutMs ?? this.opts.timeoutMs ?? 15_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = text === "" ? undefined : JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body, text });
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("request timed out")));
      req.on("error", (cause) => {
        if (isTlsVerificationError(cause)) {
          const hint = this.opts.caPem || this.opts.caHash ? "" : "; pass --ca-hash (printed by `weft keys create`)";
          reject(new ApiRequestError(`${method} ${path}: the controller at ${where} has a certificate that does not verify: ${cause.message}${hint}`, undefined, "tls_verification", false, { cause }));
          return;
        }
        reject(new ApiRequestError(`${method} ${path}: cannot reach the controller at ${where}: ${cause.message}`, undefined, "unreachable", true, { cause }));
      });
      if (bodyText !== undefined) req.write(bodyText);
      req.end();
    });
  }

  /** Where and how to send a TCP request: plain for http, verified against the (pinned) CA for https. */
  private async tcpTarget(method: string, path: string): Promise<Target> {
    const u = new URL(this.opts.url!);
    const host = u.hostname.replace(/^\[|\]$/g, "");
    if (u.protocol === "http:") return { send: httpRequest, options: { host, port: Number(u.port || 80) } };
    if (u.protocol !== "https:") throw new Error(`controller URL ${this.opts.url}: use http:// or https://`);
    const port = Number(u.port || 443);
    let ca = this.opts.caPem;
    if (ca === undefined && this.opts.caHash !== undefined) {
      this.pinnedCa ??= resolvePinnedCa({ host, port, caHash: this.opts.caHash, timeoutMs: this.opts.timeoutMs });
      try {
        ca = await this.pinnedCa;
      } catch (cause) {
        this.pinnedCa = undefined;
        if (cause instanceof CaPinMismatchError) throw new ApiRequestError(`${method} ${path}: ${cause.message}`, undefined, "ca_mismatch", false, { cause });
        throw new ApiRequestError(`${method} ${path}: cannot reach the controller at ${this.opts.url}: ${(cause as Error).message}`, undefined, "unreachable", true, { cause });
      }
    }
    // agent: false — no pooled socket verified under other options is ever reused.
    return { send: httpsRequest, options: { host, port, agent: false, ...(ca === undefined ? {} : { ca }) } };
  }
}

interface Target {
  send: (options: RequestOptions & { ca?: string }, callback: (res: IncomingMessage) => void) => ClientRequest;
  options: RequestOptions & { ca?: string };
}
