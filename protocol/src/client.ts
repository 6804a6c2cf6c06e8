/**
 * A typed client for the controller's REST API, over TCP or the controller's
 * local unix socket. Every non-2xx answer becomes an ApiRequestError carrying
 * the controller's message; `retryable` is true for network failures and 5xx.
 */
import { request } from "node:http";
import { z } from "zod";
import { ApiError, JoinKeyCreated, JoinKeyInfo, NodeView, type JoinKeyCreateRequest } from "./messages.js";

export interface ControllerClientOptions {
  /** http://host:port of the API; ignored when `socketPath` is set. */
  url?: string;
  /** The controller's unix socket (`<stateDir>/api.sock`). */
  socketPath?: string;
  adminToken?: string;
  timeoutMs?: number;
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
  constructor(private readonly opts: ControllerClientOptions) {
    if (!opts.url && !opts.socketPath) throw new Error("ControllerClient needs a url or a socketPath");
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
  listNodes(): Promise<NodeView[]> {
    return this.call("GET", "/v1/nodes", z.array(NodeView));
  }
  getNode(idOrName: string): Promise<NodeView> {
    return this.call("GET", `/v1/nodes/${encodeURIComponent(idOrName)}`, NodeView);
  }
  deleteNode(idOrName: string): Promise<NodeView> {
    return this.call("DELETE", `/v1/nodes/${encodeURIComponent(idOrName)}`, NodeView);
  }

  async call<S extends z.ZodType>(method: string, path: string, schema: S, body?: unknown): Promise<z.infer<S>> {
    const res = await this.raw(method, path, body === undefined ? undefined : JSON.stringify(body));
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
  raw(method: string, path: string, bodyText?: string, headers: Record<string, string> = {}): Promise<RawResponse> {
    const target = this.opts.socketPath ? { socketPath: this.opts.socketPath } : urlTarget(this.opts.url!);
    const allHeaders: Record<string, string> = { ...headers };
    if (this.opts.adminToken && !("authorization" in allHeaders)) allHeaders.authorization = `Bearer ${this.opts.adminToken}`;
    if (bodyText !== undefined) {
      allHeaders["content-type"] ??= "application/json";
      allHeaders["content-length"] = String(Buffer.byteLength(bodyText));
    }
    return new Promise((resolve, reject) => {
      const req = request({ ...target, method, path, headers: allHeaders, timeout: this.opts.timeoutMs ?? 15_000 }, (res) => {
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
      req.on("error", (cause) =>
        reject(new ApiRequestError(`${method} ${path}: cannot reach the controller at ${this.opts.socketPath ?? this.opts.url}: ${cause.message}`, undefined, "unreachable", true, { cause })),
      );
      if (bodyText !== undefined) req.write(bodyText);
      req.end();
    });
  }
}

function urlTarget(url: string): { host: string; port: number } {
  const u = new URL(url);
  if (u.protocol !== "http:") throw new Error(`controller URL ${url}: only http:// is supported by this client`);
  return { host: u.hostname, port: Number(u.port || 80) };
}
