/**
 * `weft service apply -f <file> | list | get [namespace/name] | delete <namespace/name>`:
 * services through the controller's API. `list --json` gives every service with each backend's
 * site and health; `get` shows one service's backends: locality, weight and share, health,
 * active connections, connects, failures, latency and passive ejections (what clients reported).
 */
import { readFile } from "node:fs/promises";
import { Service, serviceRef, type ServiceInput, type ServiceView } from "@weft/protocol";
import { parseDocumentFile } from "../documents.js";
import { UsageError } from "../errors.js";
import { printJson, printTable } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";

/** The services in a file's text, each checked against the Service schema. Throws UsageError. */
export function parseServiceFile(text: string, source = "service file"): ServiceInput[] {
  return parseDocumentFile(text, source, { schema: Service, what: "service", idOf: (s) => serviceRef(s) });
}

/** `shop/api` → {namespace: shop, name: api}. Throws UsageError. */
export function parseServiceRef(text: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\/([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$/.exec(text);
  if (!m?.[1] || !m[3]) throw new UsageError(`${JSON.stringify(text)}: name a service as <namespace>/<name>, e.g. shop/api`);
  return { namespace: m[1], name: m[3] };
}

export function serviceRows(views: readonly ServiceView[]): string[][] {
  return views.map((v) => {
    const healthy = v.backends.filter((b) => b.health !== "unhealthy").length;
    const sites = [...new Set(v.backends.map((b) => b.site))].sort().join(",");
    return [serviceRef(v.service), v.vip, v.dnsName, v.service.ports.map((p) => `${p.protocol}/${p.port}`).join(","), v.service.algorithm, v.service.locality, `${healthy}/${v.backends.length}`, sites || "-"];
  });
}

export const SERVICE_HEADERS = ["SERVICE", "VIP", "NAME", "PORTS", "ALGORITHM", "LOCALITY", "HEALTHY", "SITES"];

export function backendRows(v: ServiceView): string[][] {
  return v.backends.map((b) => [
    `${b.address}:${b.port}`,
    b.workload ? `${b.workload}@${b.node}` : b.node,
    b.site,
    b.cloud ?? "-",
    b.subset || "-",
    String(b.weight),
    `${b.sharePercent}%`,
    b.health + (b.health === "unhealthy" && b.healthReason ? ` (${b.healthReason})` : ""),
    String(b.activeConnections),
    String(b.connects),
    String(b.failures),
    b.latencyMs === undefined ? "-" : `${b.latencyMs.toFixed(2)}ms`,
    b.ejectedBy.join(",") || "-",
  ]);
}

export const BACKEND_HEADERS = ["BACKEND", "ON", "SITE", "CLOUD", "SUBSET", "WEIGHT", "SHARE", "HEALTH", "ACTIVE", "CONNECTS", "FAILURES", "LATENCY", "EJECTED BY"];

export async function applyServices(o: AdminOptions & { file: string; json?: boolean }): Promise<void> {
  let text: string;
  try {
    text = await readFile(o.file, "utf8");
  } catch (err) {
    throw new UsageError(`-f ${o.file}: cannot read it: ${(err as Error).message}`);
  }
  const services = parseServiceFile(text, o.file);
  const client = await adminClient(o);
  const applied = [];
  for (const s of services) applied.push(await client.applyService(s));
  if (o.json) return printJson(applied);
  for (const r of applied) process.stdout.write(`service ${serviceRef(r.spec)} applied: VIP ${r.vip}\n`);
}

export async function listServices(o: AdminOptions & { json?: boolean }): Promise<void> {
  const views = await (await adminClient(o)).listServices();
  if (o.json) return printJson(views);
  printTable(SERVICE_HEADERS, serviceRows(views));
}

/** One service with its backends; without a reference, the list. */
export async function getService(ref: string | undefined, o: AdminOptions & { json?: boolean }): Promise<void> {
  if (ref === undefined) return listServices(o);
  const { namespace, name } = parseServiceRef(ref);
  const v = await (await adminClient(o)).getService(namespace, name);
  if (o.json) return printJson(v);
  printTable(SERVICE_HEADERS, serviceRows([v]));
  process.stdout.write("\n");
  printTable(BACKEND_HEADERS, backendRows(v));
  if (v.refused.rateLimited + v.refused.noBackend > 0) process.stdout.write(`\nrefused new connections: rateLimited=${v.refused.rateLimited} noBackend=${v.refused.noBackend}\n`);
}

export async function deleteService(ref: string, o: AdminOptions & { json?: boolean }): Promise<void> {
  const { namespace, name } = parseServiceRef(ref);
  const deleted = await (await adminClient(o)).deleteService(namespace, name);
  if (o.json) return printJson(deleted);
  process.stdout.write(`service ${serviceRef(deleted.spec)} deleted (VIP ${deleted.vip} released)\n`);
}
