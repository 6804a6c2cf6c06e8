/**
 * Policy on the wire: the document an admin applies (`weft policy apply -f`,
 * `PUT /v1/policies/:name`) and the per-node map entries it compiles to.
 *
 * Parsing fails closed: every object is strict (an unknown key is an error,
 * never ignored), actions and protocols are closed enums, and a selector must be
 * exactly one known shape. Parsing also normalises, so equivalent documents are
 * stored and compiled identically: protocol names are lower-cased ("TCP" → "tcp")
 * and CIDRs are reduced to their network address ("10.1.2.3/8" → "10.0.0.0/8").
 */
import { z } from "zod";
import { Identity, labels, nodeId, nodeName, spiffeId } from "./messages.js";
import { formatCidr, parseCidr } from "./net.js";

/** Most ports one `port`..`endPort` range may cover: each port is one map entry. */
export const POLICY_PORT_RANGE_LIMIT = 1024;

/** IP protocol numbers of the policy map key; 0 = any protocol (then the port is 0 too). */
export const PolicyProtocolNumbers = { any: 0, icmp: 1, tcp: 6, udp: 17 } as const;
export type PolicyProtocol = keyof typeof PolicyProtocolNumbers;

const port = z.number("must be a number 1-65535").int("must be 1-65535").min(1, "must be 1-65535").max(65535, "must be 1-65535");

export const PortSpec = z
  .object({
    /** Case-insensitive on input, stored lower case. */
    protocol: z
      .string("must be one of tcp, udp, icmp, any")
      .transform((s) => s.toLowerCase())
      .pipe(z.enum(["tcp", "udp", "icmp", "any"], "must be one of tcp, udp, icmp, any")),
    /** Destination port; absent = every port of the protocol. */
    port: port.optional(),
    /** Last port of a range starting at `port` (inclusive). */
    endPort: port.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.protocol === "icmp" && (p.port !== undefined || p.endPort !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["port"], message: "icmp has no ports; leave port and endPort out" });
      return;
    }
    if (p.endPort === undefined) return;
    if (p.port === undefined) ctx.addIssue({ code: "custom", path: ["endPort"], message: "needs port (the first port of the range)" });
    else if (p.endPort < p.port) ctx.addIssue({ code: "custom", path: ["endPort"], message: `must be at least port (${p.port})` });
    else if (p.endPort - p.port + 1 > POLICY_PORT_RANGE_LIMIT) {
      ctx.addIssue({
        code: "custom",
        path: ["endPort"],
        message: `a range covers at most ${POLICY_PORT_RANGE_LIMIT} ports (${p.port}-${p.endPort} is ${p.endPort - p.port + 1}); split it, or leave the port out to allow every port`,
      });
    }
  });
export type PortSpec = z.infer<typeof PortSpec>;

const serviceAccount = z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, "must be a service account name: lowercase letters, digits, '.' and '-'");
const canonicalCidr = z
  .string("must be an IPv4 CIDR like 10.0.0.0/16")
  .refine((s) => parseCidr(s) !== undefined, "must be an IPv4 CIDR like 10.0.0.0/16")
  .transform((s) => formatCidr(parseCidr(s)!));

/** The selector shapes, by the one key that tells them apart. */
const SelectorShapes = {
  /** One SPIFFE ID. */
  identity: z.object({ identity: spiffeId }).strict(),
  /** Every identity of a namespace, or one service account in it. */
  namespace: z.object({ namespace: nodeName, serviceAccount: serviceAccount.optional() }).strict(),
  /** The identities of nodes carrying all of these labels. */
  labels: z
    .object({ labels: labels.refine((l) => Object.keys(l).length > 0, "must name at least one label") })
    .strict(),
  /** Addresses outside the overlay (compiled to the reserved `world` identity for now). */
  cidr: z.object({ cidr: canonicalCidr }).strict(),
} as const;
const SELECTOR_KINDS = Object.keys(SelectorShapes) as (keyof typeof SelectorShapes)[];
const SELECTOR_HELP = "must be exactly one of {identity}, {namespace, serviceAccount?}, {labels}, {cidr}";

/** Why `input` is not a selector, naming the bad field when the shape is recognisable. */
function selectorError(input: unknown): string {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return SELECTOR_HELP;
  const kinds = SELECTOR_KINDS.filter((k) => k in input);
  const kind = kinds[0];
  if (kinds.length !== 1 || kind === undefined) return SELECTOR_HELP;
  const parsed = SelectorShapes[kind].safeParse(input);
  const issue = parsed.success ? undefined : parsed.error.issues[0];
  if (!issue) return SELECTOR_HELP;
  if (issue.code === "unrecognized_keys") return `${kind} selector: unknown field(s) ${issue.keys.join(", ")}`;
  return `${[...issue.path].map(String).join(".") || kind}: ${issue.message}`;
}

export const Selector = z.union([SelectorShapes.identity, SelectorShapes.namespace, SelectorShapes.labels, SelectorShapes.cidr], {
  error: (iss) => selectorError(iss.input),
});
export type Selector = z.infer<typeof Selector>;

export const Rule = z
  .object({
    action: z.enum(["allow", "deny"], "must be allow or deny"),
    /** Sources: traffic from any of them. */
    from: z.array(Selector).min(1, "needs at least one selector"),
    /** Destinations: the rule is enforced on ingress at the nodes these select. */
    to: z.array(Selector).min(1, "needs at least one selector"),
    /** Absent or empty: every protocol and port. */
    ports: z.array(PortSpec).max(64).optional(),
  })
  .strict();
export type Rule = z.infer<typeof Rule>;

export const Policy = z
  .object({
    version: z.literal(1).default(1),
    name: nodeName,
    description: z.string().max(200).optional(),
    rules: z.array(Rule).min(1, "needs at least one rule").max(256),
  })
  .strict();
export type Policy = z.infer<typeof Policy>;
export type PolicyInput = z.input<typeof Policy>;

/**
 * One policy map entry: the datapath's key {srcId, dstId, proto, dport} and
 * its verdict. `dport` is in host order here (the map codec writes network
 * order); proto 0 = any protocol, dport 0 = any port.
 */
export const PolicyEntry = z.object({
  srcId: z.number().int().min(0).max(0xffffffff),
  dstId: z.number().int().min(0).max(0xffffffff),
  proto: z.number().int().min(0).max(255),
  dport: z.number().int().min(0).max(65535),
  verdict: z.enum(["allow", "deny"]),
});
export type PolicyEntry = z.infer<typeof PolicyEntry>;

/** What one node enforces: its map entries and the identities it default-denies. */
export const NodePolicy = z.object({
  nodeId,
  identity: Identity.optional(),
  /** The identities the node enforces for (its own and its workloads'), sorted; as in NodePolicyRecord. */
  localIdentities: z.array(z.number().int()).optional(),
  /** Names of the policies that contributed entries, sorted. */
  policies: z.array(z.string()),
  /** Destination identities with any policy: traffic to them that no allow entry matches is dropped. */
  defaultDeny: z.array(z.number().int()),
  entries: z.array(PolicyEntry),
});
export type NodePolicy = z.infer<typeof NodePolicy>;

/** Policy map verdict codes (bpf/progs/lib/verdict.h): never renumbered. */
export const VerdictCodes = { allow: 1, deny: 2 } as const;

/**
 * One entry on the wire, compact: [srcId, dstId, proto, dport (host order), verdict code].
 * 10k entries stay near 250 KB, well inside one NATS message.
 */
export const CompactPolicyEntry = z.tuple([
  z.number().int().min(0).max(0xffffffff),
  z.number().int().min(0).max(0xffffffff),
  z.number().int().min(0).max(255),
  z.number().int().min(0).max(65535),
  z.union([z.literal(VerdictCodes.allow), z.literal(VerdictCodes.deny)]),
]);
export type CompactPolicyEntry = z.infer<typeof CompactPolicyEntry>;

/**
 * KV `weft-node-policies`, key = node id: everything the node's datapath enforces, for the
 * node's own identity and its workloads' identities. The agent diffs it against its maps and
 * applies only the difference.
 */
export const NodePolicyRecord = z.object({
  version: z.literal(1),
  nodeId,
  /** The identities this node enforces for (its own and its workloads'), sorted. */
  localIdentities: z.array(z.number().int()),
  policies: z.array(z.string()),
  defaultDeny: z.array(z.number().int()),
  entries: z.array(CompactPolicyEntry),
  compiledAt: z.string(),
});
export type NodePolicyRecord = z.infer<typeof NodePolicyRecord>;

export function toCompactEntry(e: PolicyEntry): CompactPolicyEntry {
  return [e.srcId, e.dstId, e.proto, e.dport, VerdictCodes[e.verdict]];
}

export function fromCompactEntry([srcId, dstId, proto, dport, v]: CompactPolicyEntry): PolicyEntry {
  return { srcId, dstId, proto, dport, verdict: v === VerdictCodes.deny ? "deny" : "allow" };
}
