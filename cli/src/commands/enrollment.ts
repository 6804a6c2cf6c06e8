/**
 * `weft enrollment-policy apply -f <file> | apply --name … --provider … | get [name] | delete <name>`:
 * enrollment policies (keyless join by instance identity) through the controller's API. A file is
 * YAML or JSON holding one policy, a list, or several `---` documents; every policy is checked
 * before any is sent.
 */
import { readFile } from "node:fs/promises";
import { EnrollmentPolicy, type EnrollmentPolicyInput } from "@weft/protocol";
import type { Command } from "commander";
import { parseAllDocuments } from "yaml";
import { UsageError } from "../errors.js";
import { printJson, printTable } from "../output.js";
import { addAdminOptions, adminClient, type AdminOptions } from "./admin-client.js";
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
  if (f.name === undefined || f.provider === undefined) throw new UsageError("give -f <file>, or --name <name> and --provider <aws|azure|gcp|onprem> (with --account, --region, --network, --tag to narrow it)");
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

export function registerEnrollmentPolicy(program: Command): void {
  const cmd = program.command("enrollment-policy").description("manage enrollment policies: which inventory instances may join without a join key, with which labels");

  addAdminOptions(cmd.command("apply").description("create or replace enrollment policies from a YAML or JSON file, or one from flags"))
    .option("-f, --file <file>", "policy file: one policy, a list, or several --- documents")
    .option("--name <name>", "policy name (without -f)")
    .option("--description <text>", "what the policy is for")
    .option("--provider <provider>", "aws | azure | gcp | onprem (required without -f)")
    .option("--account <id>", "only instances in this AWS account, Azure subscription or GCP project")
    .option("--region <region>", "only instances in this region")
    .option("--network <id>", "only instances in this network (VPC id, VNet id, GCE network)")
    .option("--tag <key=value...>", "only instances with this tag (repeatable; all must match)")
    .option("--label <key=value...>", "labels granted to the nodes enrolled through this policy (weft:workload-identities=shop/web grants a workload identity)")
    .option("--site <site>", "the site of the nodes it admits (else their instance's network's site in the inventory config)")
    .option("--json", "print JSON")
    .action(async (o: AdminOptions & EnrollmentPolicyFlags & { file?: string; json?: boolean }) => {
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
    });

  addAdminOptions(cmd.command("get").description("list enrollment policies, or show one").argument("[name]", "policy name"))
    .option("--json", "print JSON")
    .action(async (name: string | undefined, o: AdminOptions & { json?: boolean }) => {
      const client = await adminClient(o);
      if (name !== undefined) return printJson(await client.getEnrollmentPolicy(name));
      const list = await client.listEnrollmentPolicies();
      if (o.json) return printJson(list);
      printTable(
        ["NAME", "SELECTOR", "SITE", "LABELS", "DESCRIPTION"],
        list.map((p) => [p.name, formatSelector(p.selector), p.site ?? "-", Object.entries(p.labels).map(([a, b]) => `${a}=${b}`).join(","), p.description ?? ""]),
      );
    });

  addAdminOptions(cmd.command("delete").description("delete an enrollment policy; nodes enrolled through it stay").argument("<name>", "policy name"))
    .option("--json", "print JSON")
    .action(async (name: string, o: AdminOptions & { json?: boolean }) => {
      const deleted = await (await adminClient(o)).deleteEnrollmentPolicy(name);
      if (o.json) return printJson(deleted);
      process.stdout.write(`enrollment policy ${deleted.name} deleted\n`);
    });
}
