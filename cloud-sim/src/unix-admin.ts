/**
 * The admin interface on a unix socket as well: the lab runs each simulator inside a network
 * namespace that the machine's own namespace cannot route to, so tests and the demo reach the
 * fleet through a socket in the lab's directory. `unixFetch` lets SimAdmin use it.
 */
import { createServer, request, type Server } from "node:http";
import { rm } from "node:fs/promises";
import { handleAdmin, sendJson } from "./admin.js";
import type { Faults } from "./faults.js";
import type { SimStore } from "./store.js";

export async function serveAdminSocket(path: string, store: SimStore, faults: Faults): Promise<Server> {
  await rm(path, { force: true });
  const server = createServer((req, res) => {
    handleAdmin(req, res, store, faults)
      .then((handled) => {
        if (!handled) sendJson(res, 404, { error: "only /_sim/ routes are served on the admin socket" });
      })
      .catch((err: unknown) => sendJson(res, 500, { error: (err as Error).message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  return server;
}

/** A fetch over a unix socket (enough for SimAdmin: method, JSON body, text response). */
export function unixFetch(socketPath: string): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    const body = typeof init?.body === "string" ? init.body : undefined;
    return new Promise<Response>((resolve, reject) => {
      const req = request(
        { socketPath, path: `${url.pathname}${url.search}`, method: init?.method ?? "GET", headers: { "content-type": "application/json", ...(body ? { "content-length": Buffer.byteLength(body) } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve(new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), { status: res.statusCode ?? 500 })));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      if (body) req.write(body);
      req.end();
    });
  }) as typeof fetch;
}
