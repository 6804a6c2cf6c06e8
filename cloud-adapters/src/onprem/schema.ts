/**
 * The on-prem inventory file, defined once: a site, its networks and its hosts. Unknown keys are
 * refused (a typo must not silently drop a host's address), ids are unique, every host names a
 * declared network, no address belongs to two hosts, and sizes are bounded (ONPREM_LIMITS: 4 MiB,
 * 10,000 hosts, 64 addresses and 64 tags a host, 256 characters a string). Errors name the field: `instances[2].privateIps[0]: must be an IPv4 address`.
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

/** Bounds on what one file may hold: a typo or a hostile file must not make the controller store millions of records. */
export const ONPREM_LIMITS = { fileBytes: 4 * 1024 * 1024, instances: 10_000, networks: 1000, addresses: 64, cidrs: 256, tags: 64, text: 256 } as const;

const name = z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).max(ONPREM_LIMITS.text, { error: `must be at most ${ONPREM_LIMITS.text} characters` });
const ipv4 = z.ipv4({ error: "must be an IPv4 address" });
const cidrv4 = z.cidrv4({ error: "must be an IPv4 CIDR (a.b.c.d/n)" });

export const OnpremNetworkFile = z.strictObject({
  id: name,
  cidrs: z.array(cidrv4, { error: "must be a list of CIDRs" }).max(ONPREM_LIMITS.cidrs, { error: `must hold at most ${ONPREM_LIMITS.cidrs} CIDRs` }),
});

export const OnpremInstanceFile = z.strictObject({
  id: name,
  name: name.optional(),
  network: name,
  privateIps: z
    .array(ipv4, { error: "must be a list of IPv4 addresses" })
    .min(1, { error: "must hold at least one address" })
    .max(ONPREM_LIMITS.addresses, { error: `must hold at most ${ONPREM_LIMITS.addresses} addresses` }),
  publicIps: z.array(ipv4, { error: "must be a list of IPv4 addresses" }).max(ONPREM_LIMITS.addresses, { error: `must hold at most ${ONPREM_LIMITS.addresses} addresses` }).optional(),
  tags: z
    .record(name, z.string({ error: "must be a string (quote numbers and booleans)" }).max(ONPREM_LIMITS.text, { error: `must be at most ${ONPREM_LIMITS.text} characters` }), {
      error: "must be a mapping of strings",
    })
    .refine((t) => Object.keys(t).length <= ONPREM_LIMITS.tags, { error: `must hold at most ${ONPREM_LIMITS.tags} tags` })
    .optional(),
  state: z.enum(InstanceState.options, { error: `must be one of ${InstanceState.options.join(", ")}` }).optional(),
});

export const OnpremFile = z
  .strictObject(
    {
      site: name,
      networks: z.array(OnpremNetworkFile, { error: "must be a list" }).max(ONPREM_LIMITS.networks, { error: `must hold at most ${ONPREM_LIMITS.networks} networks` }),
      instances: z.array(OnpremInstanceFile, { error: "must be a list" }).max(ONPREM_LIMITS.instances, { error: `must hold at most ${ONPREM_LIMITS.instances} hosts` }),
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
    // An address belongs to one host: two hosts claiming it would make enrollment by address ambiguous.
    const owner = new Map<string, string>();
    f.instances.forEach((h, i) => {
      for (const [field, ips] of [["privateIps", h.privateIps], ["publicIps", h.publicIps ?? []]] as const) {
        ips.forEach((ip, j) => {
          const where = `instances[${i}].${field}[${j}]`;
          const prev = owner.get(ip);
          if (prev !== undefined && !prev.startsWith(`instances[${i}].`)) {
            ctx.addIssue({ code: "custom", path: ["instances", i, field, j], message: `address ${ip} is also ${prev}'s: each address belongs to one host` });
          } else if (prev === undefined) owner.set(ip, where);
        });
      }
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
