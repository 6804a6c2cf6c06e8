/**
 * `weft policy apply -f <file> | get [name] | delete <name>`: policies through
 * the controller's API. A file is YAML or JSON (JSON is YAML), holding one
 * policy, a list of them, or several `---` documents. Every policy in the file
 * is checked before any is sent, so a file with one bad policy applies none.
 */
import { readFile } from "node:fs/promises";
import { Policy, type NodeView, type PolicyInput } from "@weft/protocol";
import { parseAllDocuments } from "yaml";
import { UsageError } from "../errors.js";
import { printJson, printTable } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";

/** `rules.1.ports.0.port` as a user reads the document: `rules[1].ports[0].port`. */
function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(policy)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

/**
 * The policies in a policy file's text, checked against the schema (unknown
 * fields refused). Throws a UsageError naming the file, the policy and the field.
 */
export function parsePolicyFile(text: string, source = "policy file"): PolicyInput[] {
  const docs = parseAllDocuments(text);
  const values: unknown[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    const firstError = doc.errors[0];
    if (firstError) throw new UsageError(`${source}: not YAML or JSON: ${firstError.message.split("\n")[0]}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue; // empty document
    if (Array.isArray(value)) values.push(...(value as unknown[]));
    else values.push(value);
  }
  if (values.length === 0) throw new UsageError(`${source}: holds no policy`);
  const names = new Set<string>();
  return values.map((value, i) => {
    const parsed = Policy.safeParse(value);
    const which = values.length > 1 ? ` policy ${i + 1}` : "";
    if (!parsed.success) {
      throw new UsageError(`${source}${which} is invalid: ${parsed.error.issues.map((iss) => `${fieldPath(iss.path)}: ${iss.message}`).join("; ")}`);
    }
    if (names.has(parsed.data.name)) throw new UsageError(`${source}${which}: the name ${parsed.data.name} appears twice`);
    names.add(parsed.data.name);
    // Send what the file says; the controller normalises it the same way.
    return value as PolicyInput;
  });
}

/** One line per node whose compiled policy is not delivered (it keeps its last good policy). */
export function undeliveredLines(nodes: readonly Pick<NodeView, "name" | "nodeId" | "policyDelivery">[]): string[] {
  return nodes
    .filter((n) => n.policyDelivery?.state === "oversized")
    .map((n) => `node ${n.name} (${n.nodeId}): policy NOT delivered since ${n.policyDelivery!.since ?? "?"}: it needs ${n.policyDelivery!.mapEntries} datapath map entries, the map holds ${n.policyDelivery!.capacity}; the node keeps its last good policy`);
}

export async function applyPolicies(o: AdminOptions & { file: string; json?: boolean }): Promise<void> {
  let text: string;
  try {
    text = await readFile(o.file, "utf8");
  } catch (err) {
    throw new UsageError(`-f ${o.file}: cannot read it: ${(err as Error).message}`);
  }
  const policies = parsePolicyFile(text, o.file);
  const client = await adminClient(o);
  const applied = [];
  for (const p of policies) applied.push(await client.applyPolicy(p));
  if (o.json) return printJson(applied);
  for (const p of applied) process.stdout.write(`policy ${p.name} applied (${p.rules.length} rule${p.rules.length === 1 ? "" : "s"})\n`);
}

export async function getPolicies(name: string | undefined, o: AdminOptions & { json?: boolean }): Promise<void> {
  const client = await adminClient(o);
  if (name !== undefined) return printJson(await client.getPolicy(name));
  const list = await client.listPolicies();
  if (o.json) return printJson(list);
  printTable(
    ["NAME", "RULES", "DESCRIPTION"],
    list.map((p) => [p.name, `${p.rules.filter((r) => r.action === "allow").length} allow, ${p.rules.filter((r) => r.action === "deny").length} deny`, p.description ?? ""]),
  );
  for (const line of undeliveredLines(await client.listNodes())) process.stdout.write(`${line}\n`);
}

export async function deletePolicy(name: string, o: AdminOptions & { json?: boolean }): Promise<void> {
  const deleted = await (await adminClient(o)).deletePolicy(name);
  if (o.json) return printJson(deleted);
  process.stdout.write(`policy ${deleted.name} deleted\n`);
}
