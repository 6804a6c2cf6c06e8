/**
 * `weft mesh export --format istio` and `weft mesh import -f authz.yaml`: the overlay and an Istio
 * mesh with one identity. Export reads nodes, workloads, policies and services from the
 * controller's API and prints WorkloadEntry, ServiceEntry (a service's VIP, name and backends) and
 * AuthorizationPolicy documents (YAML, `---` between them);
 * import translates AuthorizationPolicy documents into Weft policies and applies them (or prints
 * them with --dry-run). What cannot be translated stops the import with the document and field
 * named; nothing is applied then. Notes (what the overlay alone enforces, what was skipped) go to
 * stderr. The translations themselves are controller/src/mesh (pure functions).
 */
import { readFile, writeFile } from "node:fs/promises";
import { parseAllDocuments, stringify } from "yaml";
import { UsageError } from "../errors.js";
import { printJson } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";

const DEFAULT_TRUST_DOMAIN = "weft.internal";

export type MeshExportFlags = AdminOptions & { format: string; network: string; trustDomain?: string; output?: string; json?: boolean };
export type MeshImportFlags = AdminOptions & { file: string; trustDomain?: string; dryRun?: boolean; json?: boolean };

/** `weft mesh export`: Istio documents for the overlay's members and policy. */
export async function meshExport(o: MeshExportFlags): Promise<void> {
  if (o.format !== "istio") throw new UsageError(`--format ${o.format}: only istio is supported`);
  const { exportIstio, meshServices, MeshExportError } = await import("@weft/controller/mesh");
  const client = await adminClient(o);
  const [nodes, policies, services] = await Promise.all([client.listNodes(), client.listPolicies(), client.listServices()]);
  const trustDomain = o.trustDomain ?? trustDomainOf(nodes.flatMap((n) => [n.identity?.spiffeId, ...(n.workloads ?? []).map((w) => w.identity.spiffeId)]));
  let out;
  try {
    out = exportIstio({ trustDomain, nodes, policies, services: meshServices(services), network: o.network });
  } catch (err) {
    if (err instanceof MeshExportError) throw new UsageError(`cannot export to Istio: ${err.message}`);
    throw err;
  }
  for (const n of out.notes) process.stderr.write(`weft: note: ${n}\n`);
  const text = o.json ? `${JSON.stringify(out.resources, null, 2)}\n` : out.resources.map((r) => stringify(r)).join("---\n");
  if (o.output) await writeFile(o.output, text);
  else process.stdout.write(text);
}

/** `weft mesh import`: Istio AuthorizationPolicy documents into Weft policies, applied (or printed with --dry-run). */
export async function meshImport(o: MeshImportFlags): Promise<void> {
  const { importIstio, MeshImportError } = await import("@weft/controller/mesh");
  let text: string;
  try {
    text = await readFile(o.file, "utf8");
  } catch (err) {
    throw new UsageError(`-f ${o.file}: cannot read it: ${(err as Error).message}`);
  }
  const docs = yamlDocuments(text, o.file);
  const client = o.dryRun && o.trustDomain ? undefined : await adminClient(o);
  const trustDomain = o.trustDomain ?? trustDomainOf((await client!.listNodes()).flatMap((n) => [n.identity?.spiffeId, ...(n.workloads ?? []).map((w) => w.identity.spiffeId)]));
  let result;
  try {
    result = importIstio(docs, { trustDomain });
  } catch (err) {
    if (err instanceof MeshImportError) throw new UsageError(`${o.file}: ${err.message}; nothing was applied`);
    throw err;
  }
  for (const n of result.notes) process.stderr.write(`weft: note: ${n}\n`);
  if (o.dryRun) {
    if (o.json) printJson(result.policies);
    else process.stdout.write(result.policies.map((p) => stringify(p)).join("---\n"));
    return;
  }
  const applied = [];
  for (const p of result.policies) applied.push(await client!.applyPolicy(p));
  if (o.json) return printJson(applied);
  for (const p of applied) process.stdout.write(`policy ${p.name} applied (${p.rules.length} rule${p.rules.length === 1 ? "" : "s"})\n`);
}

/** The trust domain of the first SPIFFE ID, else the default. */
export function trustDomainOf(ids: (string | undefined)[]): string {
  for (const id of ids) {
    const m = id ? /^spiffe:\/\/([^/]+)\//.exec(id) : null;
    if (m?.[1]) return m[1];
  }
  return DEFAULT_TRUST_DOMAIN;
}

function yamlDocuments(text: string, source: string): unknown[] {
  const out: unknown[] = [];
  for (const doc of parseAllDocuments(text) as ReturnType<typeof parseAllDocuments> & unknown[]) {
    const err = doc.errors[0];
    if (err) throw new UsageError(`${source}: not YAML or JSON: ${err.message.split("\n")[0]}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) out.push(...(value as unknown[]));
    else out.push(value);
  }
  if (out.length === 0) throw new UsageError(`${source}: holds no document`);
  return out;
}
