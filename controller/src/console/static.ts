/**
 * The console's built files (console/dist: index.html and hashed assets) served at /console/ on
 * the API listener, from disk, with a strict Content-Security-Policy: scripts and styles only from
 * this origin, no framing, connections only back to this origin.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // Preact and the graph library set style attributes.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

/** The built console of this installation: `<repo>/console/dist` beside controller/dist. */
export function defaultConsoleDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "console", "dist");
}

/** True when `dir` holds a built console. */
export function consoleBuilt(dir: string): boolean {
  return existsSync(join(dir, "index.html"));
}

/** Registers /console/ (the files; /console redirects there). */
export function serveConsole(app: FastifyInstance, dir: string): void {
  void app.register(fastifyStatic, {
    root: dir,
    prefix: "/console/",
    redirect: true,
    index: ["index.html"],
    // Hashed asset names change with their content; index.html must be revalidated.
    setHeaders: (res, path) => {
      res.header("content-security-policy", CSP);
      res.header("x-content-type-options", "nosniff");
      res.header("referrer-policy", "no-referrer");
      res.header("x-frame-options", "DENY");
      res.header("cache-control", path.endsWith(".html") ? "no-cache" : "public, max-age=31536000, immutable");
    },
  });
}
