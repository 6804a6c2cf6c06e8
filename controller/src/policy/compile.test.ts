/**
 * The policy compiler on its own (no controller): per-node selection of rules
 * by destination identity, port intervals per protocol with deny winning
 * (disjoint, merged), map entries counted as port prefixes, normalised input
 * compiling identically, stable order.
 */
import { Policy, ReservedIdentities, type Identity, type PolicyEntry, type PolicyInput } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { PolicyCompiler, compileForNode, expandedPortCount, localIdentitiesOf, type CompileNode } from "./compile.js";
import { validatePolicy } from "./policies.js";
import { fieldPath } from "../validation.js";

const id = (n: number, ns: string, sa: string): Identity => ({ id: n, spiffeId: `spiffe://weft.internal/ns/${ns}/sa/${sa}` });
const web = id(300, "web", "frontend");
const api = id(301, "payments", "api");
const db = id(302, "payments", "db");
const ghost = "spiffe://weft.internal/ns/nobody/sa/yet";
const nodes: CompileNode[] = [
  { nodeId: "n-0000000000000001", identity: web, labels: { tier: "web" } },
  { nodeId: "n-0000000000000002", identity: api, labels: { tier: "app" } },
  { nodeId: "n-0000000000000003", identity: db, labels: { tier: "data" } },
];
const identities = [web, api, db];

function compile(docs: PolicyInput[], node: Identity) {
  const { mapEntries: _n, ...rest } = compileForNode({ policies: docs.map((d) => Policy.parse(d)), identities, nodes }, { identity: node });
  return rest;
}
/** An entry of ports `port`..`endPort` (one port when endPort is left out; proto 0 and "all" mean every port). */
const e = (srcId: number, dstId: number, proto: number, port: number | "all", verdict: "allow" | "deny", endPort?: number): PolicyEntry =>
  port === "all" ? { srcId, dstId, proto, port: 0, endPort: 65535, verdict } : { srcId, dstId, proto, port, endPort: endPort ?? port, verdict };

describe("policy compiler", () => {
  it("policy - a node gets only the rules whose destination selects its identity", () => {
    const docs: PolicyInput[] = [
      {
        name: "tiers",
        rules: [
          { action: "allow", from: [{ identity: web.spiffeId }], to: [{ identity: api.spiffeId }], ports: [{ protocol: "tcp", port: 8443 }] },
          { action: "allow", from: [{ namespace: "payments", serviceAccount: "api" }], to: [{ labels: { tier: "data" } }], ports: [{ protocol: "tcp", port: 5432 }] },
        ],
      },
    ];
    const got = { api: compile(docs, api), db: compile(docs, db), web: compile(docs, web) };
    expect(got.api, "payments/api node").toEqual({ policies: ["tiers"], defaultDeny: [api.id], entries: [e(web.id, api.id, 6, 8443, "allow")] });
    expect(got.db, "payments/db node").toEqual({ policies: ["tiers"], defaultDeny: [db.id], entries: [e(api.id, db.id, 6, 5432, "allow")] });
    expect(got.web, "web node: no rule targets it, nothing and no default deny").toEqual({ policies: [], defaultDeny: [], entries: [] });
  });

  it("policy - allows and denies of one protocol resolve into disjoint intervals, deny winning; udp 53 denied twice and allowed twice is denied", () => {
    const docs: PolicyInput[] = [
      { name: "b-allow", rules: [{ action: "allow", from: [{ namespace: "web" }], to: [{ identity: api.spiffeId }], ports: [{ protocol: "tcp" }, { protocol: "udp", port: 53 }] }] },
      { name: "a-deny", rules: [{ action: "deny", from: [{ namespace: "web" }], to: [{ identity: api.spiffeId }], ports: [{ protocol: "tcp", port: 22 }, { protocol: "udp", port: 53 }] }] },
      { name: "c-allow-again", rules: [{ action: "allow", from: [{ namespace: "web" }], to: [{ identity: api.spiffeId }], ports: [{ protocol: "udp", port: 53 }] }] },
    ];
    const got = compile(docs, api);
    expect(got.entries, "entries").toEqual([e(web.id, api.id, 6, 0, "allow", 21), e(web.id, api.id, 6, 22, "deny"), e(web.id, api.id, 6, 23, "allow", 65535), e(web.id, api.id, 17, 53, "deny")]);
    expect(got.policies, "contributing policies, sorted").toEqual(["a-deny", "b-allow", "c-allow-again"]);
  });

  it("policy - TCP and tcp, 10.1.2.3/8 and 10.0.0.0/8 compile to identical entries; cidr is the world identity", () => {
    const doc = (protocol: string, cidr: string): PolicyInput => ({
      name: "p",
      rules: [{ action: "allow", from: [{ cidr }, { identity: web.spiffeId }], to: [{ identity: api.spiffeId }], ports: [{ protocol: protocol as "tcp", port: 443 }] }],
    });
    const canonical = compile([doc("tcp", "10.0.0.0/8")], api);
    const variant = compile([doc("TCP", "10.1.2.3/8")], api);
    expect(variant, "TCP + 10.1.2.3/8").toEqual(canonical);
    expect(canonical.entries, "entries").toEqual([e(ReservedIdentities.world, api.id, 6, 443, "allow"), e(web.id, api.id, 6, 443, "allow")]);
    expect(Policy.parse(doc("Tcp", "10.1.2.3/8")).rules[0], "stored form").toEqual(Policy.parse(doc("tcp", "10.0.0.0/8")).rules[0]);
  });

  it("policy - ports: none is any protocol, a range is one interval, touching ranges merge, any with a port is tcp and udp, icmp has proto 1", () => {
    const got = compile(
      [
        {
          name: "ports",
          rules: [
            { action: "allow", from: [{ identity: web.spiffeId }], to: [{ identity: api.spiffeId }] },
            {
              action: "allow",
              from: [{ identity: db.spiffeId }],
              to: [{ identity: api.spiffeId }],
              ports: [{ protocol: "tcp", port: 8000, endPort: 8002 }, { protocol: "tcp", port: 8003, endPort: 8010 }, { protocol: "any", port: 9 }, { protocol: "icmp" }],
            },
          ],
        },
      ],
      api,
    );
    expect(got.entries, "entries").toEqual([
      e(web.id, api.id, 0, "all", "allow"),
      e(db.id, api.id, 1, "all", "allow"),
      e(db.id, api.id, 6, 9, "allow"),
      e(db.id, api.id, 6, 8000, "allow", 8010),
      e(db.id, api.id, 17, 9, "allow"),
    ]);
  });

  it("policy - a rule with 64 ranges compiles to 64 intervals and about a thousand map entries per source, not one per port", () => {
    const ports = Array.from({ length: 64 }, (_, i) => ({ protocol: "tcp" as const, port: 1024 * i + 3, endPort: 1024 * i + 1020 }));
    const doc: PolicyInput = { name: "wide", rules: [{ action: "allow", from: [{ namespace: "web" }], to: [{ namespace: "payments", serviceAccount: "api" }], ports }] };
    const got = compileForNode({ policies: [Policy.parse(doc)], identities, nodes }, { identity: api });
    expect(got.entries.length, "intervals").toBe(64);
    expect(got.mapEntries, "map entries (port prefixes)").toBeLessThan(64 * 20);
    expect(got.mapEntries, "what the rule's own count says").toBe(expandedPortCount(Policy.parse(doc).rules[0]!));
    expect(got.entries[0], "first interval").toEqual(e(web.id, api.id, 6, 3, "allow", 1020));
  });

  it("policy - an identity no node has yet compiles to nothing; as a source it still makes the destination default-deny", () => {
    const toGhost: PolicyInput = { name: "future", rules: [{ action: "allow", from: [{ identity: web.spiffeId }], to: [{ identity: ghost }] }] };
    const fromGhost: PolicyInput = { name: "future-src", rules: [{ action: "allow", from: [{ identity: ghost }], to: [{ identity: api.spiffeId }] }] };
    for (const node of identities) expect(compile([toGhost], node), `${node.spiffeId} with a rule to an unallocated identity`).toEqual({ policies: [], defaultDeny: [], entries: [] });
    expect(compile([fromGhost], api), "api with a rule from an unallocated identity").toEqual({ policies: ["future-src"], defaultDeny: [api.id], entries: [] });
  });

  it("policy - output order does not depend on the order of policies, rules or selectors", () => {
    const a: PolicyInput = { name: "a", rules: [{ action: "allow", from: [{ identity: db.spiffeId }, { identity: web.spiffeId }], to: [{ identity: api.spiffeId }], ports: [{ protocol: "udp", port: 2 }, { protocol: "tcp", port: 1 }] }] };
    const b: PolicyInput = { name: "b", rules: [{ action: "deny", from: [{ identity: web.spiffeId }], to: [{ identity: api.spiffeId }], ports: [{ protocol: "tcp", port: 3 }] }] };
    const reversed: PolicyInput = { name: "a", rules: [{ ...a.rules[0]!, from: [...a.rules[0]!.from].reverse(), ports: [...(a.rules[0]!.ports ?? [])].reverse() }] };
    expect(compile([b, reversed], api), "reordered input").toEqual(compile([a, b], api));
  });

});

describe("policy validation", () => {
  const base = { name: "v", rules: [{ action: "allow", from: [{ namespace: "a" }], to: [{ namespace: "b" }] }] };
  const messageOf = (input: unknown): string => {
    try {
      validatePolicy(input);
    } catch (err) {
      return (err as Error).message;
    }
    return "(accepted)";
  };

  it("policy - validation errors name the offending field", () => {
    const cases: [string, unknown, string][] = [
      ["port out of range", { ...base, rules: [base.rules[0], { ...base.rules[0], ports: [{ protocol: "tcp", port: 70000 }] }] }, "rules[1].ports[0].port: must be 1-65535"],
      ["range too wide", { ...base, rules: [{ ...base.rules[0], ports: [{ protocol: "tcp", port: 1, endPort: 2000 }] }] }, "rules[0].ports[0].endPort: a range covers at most 1024 ports"],
      ["endPort below port", { ...base, rules: [{ ...base.rules[0], ports: [{ protocol: "udp", port: 10, endPort: 5 }] }] }, "rules[0].ports[0].endPort: must be at least port"],
      ["icmp with a port", { ...base, rules: [{ ...base.rules[0], ports: [{ protocol: "icmp", port: 1 }] }] }, "rules[0].ports[0].port: icmp has no ports"],
      ["bad SPIFFE ID", { ...base, rules: [{ ...base.rules[0], to: [{ identity: "spiffe://x/y" }] }] }, "rules[0].to[0].identity: must be spiffe://"],
      ["bad CIDR", { ...base, rules: [{ ...base.rules[0], from: [{ cidr: "10.0.0.0/33" }] }] }, "rules[0].from[0].cidr: must be an IPv4 CIDR"],
      ["empty labels", { ...base, rules: [{ ...base.rules[0], from: [{ labels: {} }] }] }, "rules[0].from[0].labels: must name at least one label"],
      ["bad name", { ...base, name: "Not_A_Label" }, "name: must be a DNS label"],
      ["no rules", { ...base, rules: [] }, "rules: needs at least one rule"],
    ];
    for (const [what, input, want] of cases) expect(messageOf(input), what).toContain(want);
  });

  it("policy - unknown keys, actions, protocols and selector kinds fail closed", () => {
    const cases: [string, unknown, string][] = [
      ["unknown action", { ...base, rules: [{ ...base.rules[0], action: "log" }] }, "rules[0].action: must be allow or deny"],
      ["upper-case action", { ...base, rules: [{ ...base.rules[0], action: "ALLOW" }] }, "rules[0].action"],
      ["unknown rule key", { ...base, rules: [{ ...base.rules[0], icmpTypes: [8] }] }, "rules[0]: Unrecognized key"],
      ["unknown top-level key", { ...base, spec: {} }, "Unrecognized key"],
      ["unknown selector kind", { ...base, rules: [{ ...base.rules[0], from: [{ fqdn: "example.com" }] }] }, "rules[0].from[0]: must be exactly one of"],
      ["two selector kinds in one", { ...base, rules: [{ ...base.rules[0], from: [{ namespace: "a", cidr: "10.0.0.0/8" }] }] }, "rules[0].from[0]"],
      ["unknown selector field", { ...base, rules: [{ ...base.rules[0], to: [{ namespace: "a", pod: "x" }] }] }, "rules[0].to[0]"],
      ["unknown protocol", { ...base, rules: [{ ...base.rules[0], ports: [{ protocol: "sctp" }] }] }, "rules[0].ports[0].protocol: must be one of tcp, udp, icmp, any"],
      ["unknown port field", { ...base, rules: [{ ...base.rules[0], ports: [{ protocol: "tcp", ports: [1] }] }] }, "rules[0].ports[0]: Unrecognized key"],
      ["version 2", { ...base, version: 2 }, "version"],
    ];
    for (const [what, input, want] of cases) expect(messageOf(input), what).toContain(want);
  });

  it("policy - field paths read like the document", () => {
    expect(fieldPath(["rules", 1, "ports", 0, "port"]), "path").toBe("rules[1].ports[0].port");
  });
});

describe("policy compiler with workloads", () => {
  const batch = id(400, "jobs", "batch");
  const withWorkload = { identity: api, workloads: [{ identity: batch }, { identity: api }] };
  const input = (docs: PolicyInput[]) => ({ policies: docs.map((d) => Policy.parse(d)), identities: [...identities, batch], nodes });

  it("policy - a node compiles for its own and its workloads' identities; default deny covers each targeted one", () => {
    const got = compileForNode(
      input([
        { name: "to-jobs", rules: [{ action: "allow", from: [{ identity: web.spiffeId }], to: [{ namespace: "jobs" }], ports: [{ protocol: "tcp", port: 9000 }] }] },
        { name: "deny-db", rules: [{ action: "deny", from: [{ identity: db.spiffeId }], to: [{ namespace: "jobs" }, { identity: api.spiffeId }] }] },
      ]),
      withWorkload,
    );
    expect(localIdentitiesOf(withWorkload), "local identities, deduplicated").toEqual([api.id, batch.id]);
    expect(got, "compiled").toEqual({
      policies: ["deny-db", "to-jobs"],
      defaultDeny: [api.id, batch.id],
      entries: [e(web.id, batch.id, 6, 9000, "allow"), e(db.id, api.id, 0, "all", "deny"), e(db.id, batch.id, 0, "all", "deny")],
      mapEntries: 3,
    });
  });

  it("policy - label selectors select node identities, never workload identities", () => {
    const docs: PolicyInput[] = [{ name: "by-label", rules: [{ action: "allow", from: [{ labels: { tier: "web" } }], to: [{ labels: { tier: "app" } }] }] }];
    expect(compileForNode(input(docs), { workloads: [{ identity: batch }] }), "a node hosting only the workload").toEqual({ policies: [], defaultDeny: [], entries: [], mapEntries: 0 });
    expect(compileForNode(input(docs), withWorkload).entries, "the node identity is selected").toEqual([e(web.id, api.id, 0, "all", "allow")]);
  });

  it("policy - PolicyCompiler gives each node the same result as compileForNode", () => {
    const docs: PolicyInput[] = [{ name: "mix", rules: [{ action: "allow", from: [{ namespace: "payments" }], to: [{ namespace: "jobs" }, { namespace: "web" }] }] }];
    const compiler = new PolicyCompiler(input(docs));
    for (const target of [withWorkload, { identity: web }, { identity: db }, {}]) expect(compiler.compile(target), JSON.stringify(target)).toEqual(compileForNode(input(docs), target));
  });
});
