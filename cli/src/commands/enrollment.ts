/**
 * `weft enrollment-policy apply -f <file> | apply --name … --provider … | get [name] | delete <name>`:
 * enrollment policies (keyless join by instance identity) through the controller's API. A file is
 * YAML or JSON holding one policy, a list, or several `---` documents; every policy is checked
 * before any is sent.
 */
import { readFile } from "node:fs/promises";
import { EnrollmentPolicy, type EnrollmentPolicyInput } from "@weft/protocol";
import { parseAllDocuments } from "yaml";
import { UsageError } from "../errors.js";
import { printJson, printTable } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";
import { formatSelector, keyValues } from "./keys.js";

function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(policy)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

function checked(value: unknown, source: string): EnrollmentPolicyInput {
  const parsed = EnrollmentPolicy.safeParse(value);
  if (!parsed.success) throw new UsageError(`${source} is invalid: ${parsed.error.issues.map((iss) => `${fieldPath(iss.path)}: ${iss.message}`).join("; ")}`);
  return value as EnrollmentPolicyInput;
}

/** The enrollment policies in a file's text, checked against the schema; a UsageError names the file, policy and field. */
export function parseEnrollmentPolicyFile(text: string, source = "enrollment policy file"): EnrollmentPolicyInput[] {
  const values: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    const firstError = doc.errors[0];
    if (firstError) throw new UsageError(`${source}: not YAML or JSON: ${firstError.message.split("\n")[0]}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) values.push(...(value as unknown[]));
    else values.push(value);
  }
  if (values.length === 0) throw new UsageError(`${source}: holds no enrollment policy`);
  const names = new Set<string>();
  return values.map((value, i) => {
    const policy = checked(value, values.length > 1 ? `${source} policy ${i + 1}` : source);
    if (names.has(policy.name)) throw new UsageError(`${source}: the name ${policy.name} appears twice`);
    names.add(policy.name);
    return policy;
  });
}

export interface EnrollmentPolicyFlags {
  name?: string;
  description?: string;
  provider?: string;
  account?: string;
  region?: string;
  network?: string;
  tag?: string[];
  label?: string[];
  site?: string;
}

/** One policy from flags (`--name`, `--provider`, …), checked like a file's. */
export function enrollmentPolicyFromFlags(f: EnrollmentPolicyFlags): EnrollmentPolicyInput {
  if (f.name === undefined || f.provider === undefined) throw new UsageError("give -f <file>, or --name <name> and --provider <aws|azure|gcp> (with --account, --region, --network, --tag to narrow it)");
  const selector = {
    provider: f.provider,
    ...(f.account === undefined ? {} : { account: f.account }),
    ...(f.region === undefined ? {} : { region: f.region }),
    ...(f.network === undefined ? {} : { network: f.network }),
    ...(f.tag === undefined ? {} : { tags: keyValues("--tag", f.tag) }),
  };
  return checked(
    { name: f.name, ...(f.description === undefined ? {} : { description: f.description }), selector, ...(f.site === undefined ? {} : { site: f.site }), labels: keyValues("--label", f.label) },
    `enrollment policy ${f.name}`,
  );
}

export async function applyEnrollmentPolicies(o: AdminOptions & EnrollmentPolicyFlags & { file?: string; json?: boolean }): Promise<void> {
  let policies: EnrollmentPolicyInput[];
  if (o.file !== undefined) {
    if (o.name !== undefined || o.provider !== undefined) throw new UsageError("-f and --name/--provider exclude each other");
    let text: string;
    try {
      text = await readFile(o.file, "utf8");
    } catch (err) {
      throw new UsageError(`-f ${o.file}: cannot read it: ${(err as Error).message}`);
    }
    policies = parseEnrollmentPolicyFile(text, o.file);
  } else {
    policies = [enrollmentPolicyFromFlags(o)];
  }
  const client = await adminClient(o);
  const applied = [];
  for (const p of policies) applied.push(await client.applyEnrollmentPolicy(p));
  if (o.json) return printJson(applied);
  for (const p of applied) process.stdout.write(`enrollment policy ${p.name} applied: ${formatSelector(p.selector)}\n`);
}

export async function getEnrollmentPolicies(name: string | undefined, o: AdminOptions & { json?: boolean }): Promise<void> {
  const client = await adminClient(o);
  if (name !== undefined) return printJson(await client.getEnrollmentPolicy(name));
  const list = await client.listEnrollmentPolicies();
  if (o.json) return printJson(list);
  printTable(
    ["NAME", "SELECTOR", "SITE", "LABELS", "DESCRIPTION"],
    list.map((p) => [p.name, formatSelector(p.selector), p.site ?? "-", Object.entries(p.labels).map(([a, b]) => `${a}=${b}`).join(","), p.description ?? ""]),
  );
}

export async function deleteEnrollmentPolicy(name: string, o: AdminOptions & { json?: boolean }): Promise<void> {
  const deleted = await (await adminClient(o)).deleteEnrollmentPolicy(name);
  if (o.json) return printJson(deleted);
  process.stdout.write(`enrollment policy ${deleted.name} deleted\n`);
}
