/** `weft keys create | list | revoke`: join keys through the controller's API. */
import { InstanceSelector, type JoinKeyCreated } from "@weft/protocol";
import { UsageError } from "../errors.js";
import { parseDuration, printJson, printTable } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";

export interface CreateKeyFlags extends AdminOptions, InstanceSelectorFlags {
  reusable: boolean;
  ttl: string;
  label?: string[];
  site?: string;
  description?: string;
  json?: boolean;
}

export async function createKey(o: CreateKeyFlags): Promise<void> {
  const ttlSeconds = parseDuration(o.ttl);
  if (ttlSeconds === undefined) throw new UsageError(`--ttl ${o.ttl}: use a number with s, m, h or d, e.g. 24h`);
  const labels = keyValues("--label", o.label);
  const instanceSelector = instanceSelectorFlags(o);
  const created = await (await adminClient(o)).createJoinKey({
    reusable: o.reusable,
    ttlSeconds,
    labels,
    ...(o.site === undefined ? {} : { site: o.site }),
    ...(o.description ? { description: o.description } : {}),
    ...(instanceSelector === undefined ? {} : { instanceSelector }),
  });
  if (o.json) return printJson(created);
  process.stdout.write(`${created.key}\n`);
  process.stderr.write(`join key ${created.id}: ${created.reusable ? "reusable" : "one-time"}, expires ${created.expiresAt}. The key is shown only once.\n`);
  process.stderr.write(agentCommandHint(created, o.api));
}

export async function listKeys(o: AdminOptions & { json?: boolean }): Promise<void> {
  const list = await (await adminClient(o)).listJoinKeys();
  if (o.json) return printJson(list);
  printTable(
    ["ID", "STATE", "KIND", "USES", "EXPIRES", "LABELS", "INSTANCES", "DESCRIPTION"],
    list.map((k) => [
      k.id,
      k.state,
      k.reusable ? "reusable" : "one-time",
      String(k.uses),
      k.expiresAt,
      Object.entries(k.labels).map(([a, b]) => `${a}=${b}`).join(","),
      k.instanceSelector ? formatSelector(k.instanceSelector) : "",
      k.description ?? "",
    ]),
  );
}

export async function revokeKey(id: string, o: AdminOptions & { json?: boolean }): Promise<void> {
  const info = await (await adminClient(o)).revokeJoinKey(id);
  if (o.json) return printJson(info);
  process.stdout.write(`join key ${info.id} revoked\n`);
}

export interface InstanceSelectorFlags {
  requireInstance?: boolean;
  instanceProvider?: string;
  instanceAccount?: string;
  instanceRegion?: string;
  instanceNetwork?: string;
  instanceTag?: string[];
}

/** `--label a=b` style repeatable flags as a record; a value without `=` is a usage error. */
export function keyValues(flag: string, values: string[] | undefined): Record<string, string> {
  return Object.fromEntries(
    (values ?? []).map((l) => {
      const i = l.indexOf("=");
      if (i <= 0) throw new UsageError(`${flag} ${l}: use key=value`);
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
}

/** The --instance-* flags as an instance selector; undefined when none is given (and no --require-instance). */
export function instanceSelectorFlags(o: InstanceSelectorFlags): InstanceSelector | undefined {
  const raw = {
    ...(o.instanceProvider === undefined ? {} : { provider: o.instanceProvider }),
    ...(o.instanceAccount === undefined ? {} : { account: o.instanceAccount }),
    ...(o.instanceRegion === undefined ? {} : { region: o.instanceRegion }),
    ...(o.instanceNetwork === undefined ? {} : { network: o.instanceNetwork }),
    ...(o.instanceTag === undefined ? {} : { tags: keyValues("--instance-tag", o.instanceTag) }),
  };
  if (Object.keys(raw).length === 0 && !o.requireInstance) return undefined;
  const parsed = InstanceSelector.safeParse(raw);
  if (!parsed.success) throw new UsageError(`instance selector: ${parsed.error.issues.map((i) => `--instance-${String(i.path[0])}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** `provider=aws account=1111 tags.env=prod`, or `any instance in the inventory` for an empty selector. */
export function formatSelector(s: InstanceSelector): string {
  const parts = [
    ...(["provider", "account", "region", "network"] as const).flatMap((f) => (s[f] === undefined ? [] : [`${f}=${s[f]}`])),
    ...Object.entries(s.tags ?? {}).map(([k, v]) => `tags.${k}=${v}`),
  ];
  return parts.length > 0 ? parts.join(" ") : "any instance in the inventory";
}

/**
 * The `weft agent` command that enrolls with this key, for stderr: the URL the
 * admin reached the controller by when it was https, else the first URL the
 * controller advertises; the CA pin from the controller.
 */
export function agentCommandHint(created: JoinKeyCreated, apiUrl: string | undefined): string {
  // A key with an instance selector works only with the instance identity the agent reads from its cloud.
  const provider = created.instanceSelector?.provider;
  const cloud = created.instanceSelector ? ` --cloud ${provider === undefined || provider === "onprem" ? "<aws|azure|gcp>" : provider}` : "";
  const keyFile = "/etc/weft/join-key";
  const save = `put the key printed above in ${keyFile} (mode 0600, root only): never pass it as an argument, every local user can read a process's arguments`;
  if (!created.controller) {
    return `enroll a host: ${save}; then\n  weft agent --controller http://<controller>:8080 --join-key-file ${keyFile}${cloud}\n(the controller serves plain HTTP: the key crosses the network in clear text)\n`;
  }
  const urls = created.controller.urls ?? [];
  const used = apiUrl && /^https:/i.test(apiUrl) ? new URL(apiUrl).origin : undefined;
  const url = used ?? urls[0] ?? "https://<controller>:8080";
  const others = urls.filter((u) => u !== url);
  return [
    `enroll a host: ${save}; then`,
    `  weft agent --controller ${url} --ca-hash ${created.controller.caHash} --join-key-file ${keyFile}${cloud}`,
    ...(others.length > 0 ? [`(the controller's certificate also covers ${others.join(", ")})`] : []),
    "",
  ].join("\n");
}
