/**
 * The admin interface every simulator serves beside its cloud API (under /_sim/), so a test, the
 * lab or a person with curl changes the fleet while the SDKs read it:
 *
 *   GET    /_sim/instances                    the fleet as the simulator holds it
 *   POST   /_sim/instances                    add one (SimInstance without state/launchedAt)
 *   POST   /_sim/instances/:id/stop|start|terminate
 *   DELETE /_sim/instances/:id                gone from the API
 *   PATCH  /_sim/instances/:id/tags           {"tags": {k: v | null}, "mode"?: "patch" | "set"}
 *   PUT    /_sim/instances/:id/public-ip      {"publicIp": "198.51.100.7" | null}  a new public address
 *   POST   /_sim/networks                     add a network
 *   DELETE /_sim/networks/:id                 gone from the API
 *   POST   /_sim/faults                       add a Fault; DELETE /_sim/faults clears them
 *   GET    /_sim/calls                        API calls seen per operation
 *   PUT    /_sim/identity                     {"ageSeconds": n}: identity documents issued n s in the past
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Fault, Faults } from "./faults.js";
import { SimError, type SimInstance, type SimNetwork, type SimStore } from "./store.js";

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

/** Handles /_sim/… requests; returns false for anything else. */
export async function handleAdmin(req: IncomingMessage, res: ServerResponse, store: SimStore, faults: Faults): Promise<boolean> {
  const url = new URL(req.url ?? "/", "http://sim");
  if (!url.pathname.startsWith("/_sim/")) return false;
  const parts = url.pathname.split("/").filter(Boolean).slice(1); // after "_sim"
  try {
    const body = req.method === "GET" || req.method === "DELETE" ? undefined : ((await readBody(req)) || "{}");
    const json = body === undefined ? undefined : (JSON.parse(body) as Record<string, unknown>);
    const [what, id, action] = parts;
    if (what === "instances" && !id && req.method === "GET") return (sendJson(res, 200, store.list()), true);
    if (what === "instances" && !id && req.method === "POST") return (sendJson(res, 201, store.addInstance(json as unknown as SimInstance)), true);
    if (what === "instances" && id && req.method === "DELETE") return (store.remove(id), sendJson(res, 204, {}), true);
    if (what === "instances" && id && action === "tags" && req.method === "PATCH") {
      return (sendJson(res, 200, store.retag(id, (json?.tags ?? {}) as Record<string, string | null>, json?.mode === "set" ? "set" : "patch")), true);
    }
    if (what === "instances" && id && action === "public-ip" && req.method === "PUT") {
      const ip = json?.publicIp;
      if (ip !== null && typeof ip !== "string") throw new SimError(400, "body must be {\"publicIp\": \"<IPv4>\" | null}");
      return (sendJson(res, 200, store.setPublicIp(id, ip ?? undefined)), true);
    }
    if (what === "instances" && id && req.method === "POST" && action) {
      const state = ({ stop: "stopped", start: "running", terminate: "terminated" } as const)[action as "stop" | "start" | "terminate"];
      if (!state) throw new SimError(404, `unknown action ${action}`);
      return (sendJson(res, 200, store.setState(id, state)), true);
    }
    if (what === "networks" && id && req.method === "DELETE") return (store.removeNetwork(id), sendJson(res, 204, {}), true);
    if (what === "networks" && req.method === "POST") return (sendJson(res, 201, store.addNetwork(json as unknown as SimNetwork)), true);
    if (what === "faults" && req.method === "POST") return (faults.add(json as unknown as Fault), sendJson(res, 201, faults.pending()), true);
    if (what === "faults" && req.method === "DELETE") return (faults.clear(), sendJson(res, 204, {}), true);
    if (what === "calls" && req.method === "GET") return (sendJson(res, 200, Object.fromEntries(faults.calls)), true);
    if (what === "identity" && req.method === "PUT") {
      const age = json?.ageSeconds;
      if (typeof age !== "number" || !Number.isInteger(age) || age < 0 || age > 30 * 86_400) throw new SimError(400, "ageSeconds: an integer number of seconds, 0 to 2592000");
      store.identityAgeSeconds = age;
      return (sendJson(res, 200, { ageSeconds: age }), true);
    }
    throw new SimError(404, `no admin route ${req.method} ${url.pathname}`);
  } catch (err) {
    const status = err instanceof SimError ? err.status : err instanceof SyntaxError ? 400 : 500;
    sendJson(res, status, { error: (err as Error).message });
    return true;
  }
}

/** A client for the admin interface (tests, the lab, the benchmark). */
export class SimAdmin {
  constructor(private readonly baseUrl: string, private readonly fetchImpl: typeof fetch = fetch) {}

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await this.fetchImpl(`${this.baseUrl}/_sim${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }) });
    const text = await res.text();
    if (!res.ok) throw new SimError(res.status, `${method} /_sim${path}: ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  instances = () => this.call("GET", "/instances") as Promise<SimInstance[]>;
  addInstance = (i: Omit<SimInstance, "launchedAt" | "state"> & Partial<Pick<SimInstance, "state">>) => this.call("POST", "/instances", i) as Promise<SimInstance>;
  stop = (id: string) => this.call("POST", `/instances/${encodeURIComponent(id)}/stop`);
  start = (id: string) => this.call("POST", `/instances/${encodeURIComponent(id)}/start`);
  terminate = (id: string) => this.call("POST", `/instances/${encodeURIComponent(id)}/terminate`);
  remove = (id: string) => this.call("DELETE", `/instances/${encodeURIComponent(id)}`);
  retag = (id: string, tags: Record<string, string | null>, mode: "patch" | "set" = "patch") => this.call("PATCH", `/instances/${encodeURIComponent(id)}/tags`, { tags, mode });
  setPublicIp = (id: string, publicIp: string | null) => this.call("PUT", `/instances/${encodeURIComponent(id)}/public-ip`, { publicIp }) as Promise<SimInstance>;
  addNetwork = (n: SimNetwork) => this.call("POST", "/networks", n);
  removeNetwork = (id: string) => this.call("DELETE", `/networks/${encodeURIComponent(id)}`);
  fault = (f: Fault) => this.call("POST", "/faults", f);
  clearFaults = () => this.call("DELETE", "/faults");
  calls = () => this.call("GET", "/calls") as Promise<Record<string, number>>;
  /** Identity documents and tokens from now on are issued `seconds` in the past (0: now). */
  identityAge = (seconds: number) => this.call("PUT", "/identity", { ageSeconds: seconds });
}
