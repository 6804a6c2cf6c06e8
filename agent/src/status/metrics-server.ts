/**
 * The agent's /metrics listener on `metrics.listen`. The registry (metrics.ts, with prom-client)
 * is made on the first scrape, so an agent nobody scrapes never loads prom-client.
 */
import { createServer, type Server } from "node:http";
import type { Logger } from "pino";

/** What a scrape needs of a registry (prom-client's Registry). */
export interface ScrapeRegistry {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** Serves /metrics; a listen failure is logged and the agent keeps running without it. */
export async function serveMetrics(listen: string, registry: () => Promise<ScrapeRegistry>, log: Logger): Promise<Server | undefined> {
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i);
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end("see /metrics\n");
      return;
    }
    registry()
      .then(async (r) => {
        const body = await r.metrics();
        res.writeHead(200, { "content-type": r.contentType }).end(body);
      })
      .catch((err: unknown) => {
        log.warn({ err }, "metrics scrape failed");
        res.writeHead(500).end("scrape failed\n");
      });
  });
  return new Promise((resolve) => {
    server.once("error", (err) => {
      log.error({ err, listen }, "cannot serve metrics; continuing without them");
      resolve(undefined);
    });
    server.listen(port, host, () => {
      log.info({ listen }, "serving Prometheus metrics at /metrics");
      resolve(server);
    });
  });
}
