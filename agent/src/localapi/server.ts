/**
 * The agent's local API: HTTP over a unix socket (no TCP listener, so no cross-origin or
 * DNS-rebinding access), for the `weft` command on the same host and for local applications
 * (WhoIs, key rotation, …). Access is the socket file's: mode 0660, owned by root and the group
 * `localApi.group` when that group exists (else root only). Every route is registered by the part
 * of the agent that owns what it reads or changes; this file only serves them.
 *
 * Requests and answers are JSON; every failure is `{ error, message }` with a 4xx/5xx status, and
 * request bodies are bounded.
 */
import { chmod, chown, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";

/** The socket's file name in the agent's state directory. */
export const LOCAL_API_SOCKET = "agent.sock";
const MAX_BODY_BYTES = 64 * 1024;

/** A refusal a handler throws: the status and a stable code go to the caller with the message. */
export class LocalApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "LocalApiError";
  }
}

export interface LocalRequest {
  /** The parsed JSON body (undefined when there is none). */
  body: unknown;
  /** Query parameters. */
  query: URLSearchParams;
}

export type LocalHandler = (req: LocalRequest) => Promise<unknown>;

export interface LocalApiOptions {
  /** Path of the unix socket. */
  path: string;
  /** Group (numeric id) that may use the socket besides root; undefined: root only. */
  gid?: number | undefined;
  log: Logger;
}

export class LocalApi {
  private readonly routes = new Map<string, LocalHandler>();
  private server: Server | undefined;

  constructor(private readonly o: LocalApiOptions) {}

  /** Add a route, e.g. `route("GET", "/v1/whois", handler)`. Routes may be added after listen(). */
  route(method: "GET" | "POST", path: string, handler: LocalHandler): void {
    const key = `${method} ${path}`;
    if (this.routes.has(key)) throw new Error(`local API: route ${key} registered twice`);
    this.routes.set(key, handler);
  }

  async listen(): Promise<void> {
    await rm(this.o.path, { force: true });
    const server = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    await chmod(this.o.path, 0o660);
    if (this.o.gid !== undefined) await chown(this.o.path, 0, this.o.gid);
    this.o.log.info({ socket: this.o.path }, "serving the local API");
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.o.path, { force: true });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://local");
    const handler = this.routes.get(`${req.method} ${url.pathname}`);
    try {
      if (!handler) throw new LocalApiError(404, "not_found", `no route ${req.method} ${url.pathname}`);
      const body = await readBody(req);
      const result = await handler({ body, query: url.searchParams });
      send(res, 200, result ?? {});
    } catch (err) {
      if (err instanceof LocalApiError) return send(res, err.status, { error: err.code, message: err.message });
      this.o.log.warn({ err, route: url.pathname }, "local API request failed");
      send(res, 500, { error: "internal", message: "the agent could not answer; see its log" });
    }
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new LocalApiError(413, "too_large", `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new LocalApiError(400, "invalid_json", "request body is not JSON");
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}
