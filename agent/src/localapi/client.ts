/**
 * A client of the agent's local API (server.ts) for the `weft` command: one JSON request over the
 * unix socket. Errors carry the agent's code and message; a missing socket says the agent is not
 * running (or this user may not use it).
 */
import { request } from "node:http";

export class LocalApiCallError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "LocalApiCallError";
  }
}

export function callLocalApi<T>(socketPath: string, method: "GET" | "POST", path: string, body?: unknown, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath, method, path, timeout: timeoutMs, headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            return reject(new LocalApiCallError(`agent answered ${method} ${path} with something that is not JSON`, res.statusCode, "invalid_response"));
          }
          if ((res.statusCode ?? 500) >= 400) {
            const e = parsed as { error?: string; message?: string };
            return reject(new LocalApiCallError(e.message ?? `HTTP ${res.statusCode}`, res.statusCode, e.error ?? "error"));
          }
          resolve(parsed as T);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      const hint = err.code === "ENOENT" || err.code === "ECONNREFUSED" ? `the agent is not running (no socket at ${socketPath})` : err.code === "EACCES" ? `permission denied on ${socketPath}: run as root or as a member of the weft group` : err.message;
      reject(new LocalApiCallError(hint, undefined, err.code ?? "unreachable", { cause: err }));
    });
    if (payload) req.write(payload);
    req.end();
  });
}
