/**
 * The on-prem inventory file, defined once: a site, its networks and its hosts. Unknown keys are
 * refused (a typo must not silently drop a host's address), ids are unique, every host names a
 * declared network. Errors name the field: `instances[2].privateIps[0]: must be an IPv4 address`.
 *
 *   site: dc-paris
 *   networks:
 *     - id: lan
 *       cidrs: [10.20.0.0/16]
 *   instances:
 *     - id: db-1                 # the host name; unique in the file
 *       name: db-1.paris         # optional, default: the id
 *       network: lan
 *       privateIps: [10.20.0.11]
 *       publicIps: [203.0.113.7] # optional
 *       tags: { role: db }       # optional, string values
 *       state: running           # optional (default running): pending|running|stopping|stopped|terminated|unknown
 */
import { z } from "zod";
import { InstanceState } from "../model.js";

const name = z.string({ error: "must be a string" }).min(1, { error: "must not be empty" });
const ipv4 = z.ipv4({ error: "must be an IPv4 address" });
const cidrv4 = z.cidrv4({ error: "must be an IPv4 CIDR (a.b.c.d/n)" });

export const OnpremNetworkFile = z.strictObject({
  id: name,
  cidrs: z.array(cidrv4, { error: "must be a list of CIDRs" }),
});

export const OnpremInstanceFile = z.strictObject({
  id: name,
  name: name.optional(),
  network: name,
  privateIps: z.array(ipv4, { error: "must be a list of IPv4 addresses" }).min(1, { error: "must hold at least one address" }),
  publicIps: z.array(ipv4, { error: "must be a list of IPv4 addresses" }).optional(),
  tags: z.record(z.string(), z.string({ error: "must be a string (quote numbers and booleans)" }), { error: "must be a mapping of strings" }).optional(),
  state: z.enum(InstanceState.options, { error: `must be one of ${InstanceState.options.join(", ")}` }).optional(),
});

export const OnpremFile = z
  .strictObject(
    {
      site: name,
      networks: z.array(OnpremNetworkFile, { error: "must be a list" }),
      instances: z.array(OnpremInstanceFile, { error: "must be a list" }),
    },
    { error: "must be a mapping with site, networks and instances" },
  )
  .superRefine((f, ctx) => {
    const firstNet = new Map<string, number>();
    f.networks.forEach((n, i) => {
      const prev = firstNet.get(n.id);
      if (prev !== undefined) ctx.addIssue({ code: "custom", path: ["networks", i, "id"], message: `duplicate id "${n.id}" (also networks[${prev}])` });
      else firstNet.set(n.id, i);
    });
    const firstInst = new Map<string, number>();
    f.instances.forEach((h, i) => {
      const prev = firstInst.get(h.id);
      if (prev !== undefined) ctx.addIssue({ code: "custom", path: ["instances", i, "id"], message: `duplicate id "${h.id}" (also instances[${prev}])` });
      else firstInst.set(h.id, i);
      if (!firstNet.has(h.network)) ctx.addIssue({ code: "custom", path: ["instances", i, "network"], message: `unknown network "${h.network}" (declare it under networks)` });
    });
  });
export type OnpremFile = z.infer<typeof OnpremFile>;

/** `["instances", 2, "privateIps", 0]` → `instances[2].privateIps[0]`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || "(top level)";
}

/** One line per problem, each naming its field (parse with `reportInput: true` to tell a missing field from a wrong one). */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    if (i.code === "unrecognized_keys") return `${fieldPath(i.path)}: unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}`;
    if (i.code === "invalid_type" && i.input === undefined) return `${fieldPath(i.path)}: is required`;
    return `${fieldPath(i.path)}: ${i.message}`;
  });
}
