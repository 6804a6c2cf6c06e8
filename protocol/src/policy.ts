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

/** Most ports one `port`..`endPort` range may cover (a document limit: a range compiles to a few port prefixes whatever its width). */
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
 * Most prefixes the datapath's policy map holds (bpf/progs/lib/policy.h `weft_policy_lpm`
 * max_entries; a layout test checks they agree). A node whose compiled policy needs more is not
 * sent it: it keeps its last good policy and the controller reports the node.
 */
export const POLICY_MAP_CAPACITY = 65536;

/** Entries one chunk of a node's compiled policy carries (about 150 KB of JSON, far below NATS's 1 MB max payload). */
export const POLICY_CHUNK_ENTRIES = 4096;

const u32 = z.number().int().min(0).max(0xffffffff);
const portNumber = z.number().int().min(0).max(65535);

/**
 * One compiled entry: from `srcId` to `dstId` on protocol `proto`, destination ports
 * `port`..`endPort` (both included), and its verdict. Proto 0 = any protocol (then the ports are
 * 0-65535); 0-65535 on a protocol = every port of it. A node's entries are disjoint per
 * (srcId, dstId, proto): the compiler resolved overlapping allows and denies (deny wins), so each
 * port has one verdict. The agent turns each interval into a few port prefixes of the LPM map.
 */
export const PolicyEntry = z
  .object({
    srcId: u32,
    dstId: u32,
    proto: z.number().int().min(0).max(255),
    port: portNumber,
    endPort: portNumber,
    verdict: z.enum(["allow", "deny"]),
  })
  .refine((e) => e.endPort >= e.port, { message: "endPort must be at least port", path: ["endPort"] })
  .refine((e) => e.proto !== 0 || (e.port === 0 && e.endPort === 65535), { message: "any protocol (0) means every port (0-65535)", path: ["port"] });
export type PolicyEntry = z.infer<typeof PolicyEntry>;

/** How a node's compiled policy reaches it. */
export const PolicyDelivery = z.object({
  /** `ok`: published; `oversized`: needs more map entries than the datapath holds, not sent (the node keeps its last good policy). */
  state: z.enum(["ok", "oversized"]),
  /** Prefixes of the datapath's policy map the compiled policy needs. */
  mapEntries: z.number().int().nonnegative(),
  /** What the map holds (POLICY_MAP_CAPACITY). */
  capacity: z.number().int().positive(),
  /** Since when the node's policy has not been delivered (state oversized). */
  since: z.string().optional(),
});
export type PolicyDelivery = z.infer<typeof PolicyDelivery>;

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
  /** Whether this compiled policy fits the node's datapath, and so is sent to it. */
  delivery: PolicyDelivery.optional(),
});
export type NodePolicy = z.infer<typeof NodePolicy>;

/** Policy map verdict codes (bpf/progs/lib/verdict.h): never renumbered. */
export const VerdictCodes = { allow: 1, deny: 2 } as const;

const verdictCode = z.union([z.literal(VerdictCodes.allow), z.literal(VerdictCodes.deny)]);

/** One entry on the wire, compact: [srcId, dstId, proto, port, endPort, verdict code]. */
export const CompactPolicyEntry = z
  .tuple([u32, u32, z.number().int().min(0).max(255), portNumber, portNumber, verdictCode])
  .refine(([, , , from, to]) => to >= from, { message: "endPort must be at least port" });
export type CompactPolicyEntry = z.infer<typeof CompactPolicyEntry>;

/**
 * KV `weft-node-policies`, key = node id: everything the node's datapath enforces, for the
 * node's own identity and its workloads' identities. Small policies carry their entries here;
 * one of more than POLICY_CHUNK_ENTRIES entries carries none here and names its `chunks`
 * (keys `<nodeId>.0`, `<nodeId>.1`, …, each a NodePolicyChunk), written before this record, so
 * no message is ever larger than one chunk. The agent applies a chunked policy only when every
 * chunk carries this record's digest: all of one compilation, or nothing.
 */
export const NodePolicyRecord = z.object({
  version: z.literal(2),
  nodeId,
  /** The identities this node enforces for (its own and its workloads'), sorted. */
  localIdentities: z.array(z.number().int()),
  policies: z.array(z.string()),
  defaultDeny: z.array(z.number().int()),
  /**
   * The entries, when they fit in one record (no `chunks`; the controller writes at most
   * POLICY_CHUNK_ENTRIES here). An agent's cached copy holds its chunks' entries joined.
   */
  entries: z.array(CompactPolicyEntry),
  /** The entries are in `count` chunk keys instead; `digest` is the sha256 (hex) of all entries' JSON, in order. */
  chunks: z.object({ count: z.number().int().min(1).max(Math.ceil(POLICY_MAP_CAPACITY / POLICY_CHUNK_ENTRIES)), digest: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  /** Entries in all (here or in the chunks). */
  entryCount: z.number().int().nonnegative(),
  /** Prefixes of the datapath's policy map these entries take (at most POLICY_MAP_CAPACITY). */
  mapEntries: z.number().int().nonnegative().max(POLICY_MAP_CAPACITY),
  compiledAt: z.string(),
});
export type NodePolicyRecord = z.infer<typeof NodePolicyRecord>;

/** KV `weft-node-policies`, key `<nodeId>.<index>`: one chunk of a large compiled policy. */
export const NodePolicyChunk = z.object({
  version: z.literal(2),
  nodeId,
  /** The digest of the NodePolicyRecord this chunk belongs to. */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  index: z.number().int().nonnegative(),
  entries: z.array(CompactPolicyEntry).max(POLICY_CHUNK_ENTRIES),
});
export type NodePolicyChunk = z.infer<typeof NodePolicyChunk>;

/** The key of chunk `index` of `nodeId`'s compiled policy. */
export function nodePolicyChunkKey(nodeId: string, index: number): string {
  return `${nodeId}.${index}`;
}

/**
 * A version-1 record (controllers before port intervals): one entry per port,
 * [srcId, dstId, proto, dport (0 = any), verdict code]. Agents still read them, and a cached one.
 */
const NodePolicyRecordV1 = z.object({
  version: z.literal(1),
  nodeId,
  localIdentities: z.array(z.number().int()),
  policies: z.array(z.string()),
  defaultDeny: z.array(z.number().int()),
  entries: z.array(z.tuple([u32, u32, z.number().int().min(0).max(255), portNumber, verdictCode])),
  compiledAt: z.string(),
});

/** A node policy record of either version, read as version 2 (an agent's view; the controller writes version 2 only). */
export const AnyNodePolicyRecord = z.union([
  NodePolicyRecord,
  NodePolicyRecordV1.transform((r): NodePolicyRecord => {
    const entries = r.entries.map(([src, dst, proto, dport, v]): CompactPolicyEntry => (dport === 0 ? [src, dst, proto, 0, 65535, v] : [src, dst, proto, dport, dport, v]));
    return { ...r, version: 2, entries, entryCount: entries.length, mapEntries: 0 };
  }),
]);

export function toCompactEntry(e: PolicyEntry): CompactPolicyEntry {
  return [e.srcId, e.dstId, e.proto, e.port, e.endPort, VerdictCodes[e.verdict]];
}

export function fromCompactEntry([srcId, dstId, proto, port, endPort, v]: CompactPolicyEntry): PolicyEntry {
  return { srcId, dstId, proto, port, endPort, verdict: v === VerdictCodes.deny ? "deny" : "allow" };
}
