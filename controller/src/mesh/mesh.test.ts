/**
 * Weft ↔ Istio: the exported documents validate against Istio's published CRD schemas
 * (@kubernetes-models/istio, generated from the CRDs); export → import compiles to the same map
 * entries for every node (the compiler is the real one); an imported AuthorizationPolicy gives the
 * verdict matrix Istio's semantics give (deny wins, default deny once an ALLOW applies); and what
 * L3/L4 cannot express is refused with the field named.
 */
import { AuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1";
import { ServiceEntry, WorkloadEntry } from "@kubernetes-models/istio/networking.istio.io/v1";
import { Policy, PolicyProtocolNumbers, Service, type BackendView, type Identity, type NodeView, type PolicyInput, type ServiceView } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { PolicyCompiler, type CompiledNodePolicy } from "../policy/compile.js";
import { exportIstio, meshServices, MeshExportError, validK8sLabel, type K8sObject } from "./istio-export.js";
import { importIstio, MeshImportError, portRanges } from "./istio-import.js";

const TD = "weft.internal";
let nextId = 300;
const ids = new Map<string, Identity>();
const identity = (ns: string, sa: string): Identity => {
  const spiffeId = `spiffe://${TD}/ns/${ns}/sa/${sa}`;
  let got = ids.get(spiffeId);
  if (!got) ids.set(spiffeId, (got = { id: nextId++, spiffeId }));
  return got;
};

type Node = Pick<NodeView, "nodeId" | "name" | "site" | "overlayAddress" | "labels" | "identity" | "workloads">;
const node = (n: number, name: string, site: string, sa: string, workloads: [string, string, string][], labels: Record<string, string> = {}): Node => ({
  nodeId: `n-${n.toString(16).padStart(16, "0")}`,
  name,
  site,
  overlayAddress: `100.64.0.${n}`,
  labels: { "weft:namespace": "infra", "cloud.region": "eu-west-1", "cloud.zone": "eu-west-1a", ...labels },
  identity: identity("infra", sa),
  workloads: workloads.map(([w, ns, wsa], i) => ({ name: w, address: `100.80.${n}.${i + 1}`, identity: identity(ns, wsa) })),
});
const NODES: Node[] = [
  node(1, "aws-1", "aws", "host", [["web", "shop", "web"]], { tier: "front" }),
  node(2, "aws-2", "aws", "host", [["api", "shop", "api"]]),
  node(3, "azure-1", "azure", "db-host", [["db", "shop", "db"], ["cache", "shop", "cache"]], { tier: "data" }),
  node(4, "onprem-1", "onprem", "host", [["ledger", "finance", "ledger"]]),
];

/** Policies inside what Istio expresses exactly: identity, namespace and service-account selectors, cidr sources, TCP ports and ranges, allow and deny. */
const EXACT: PolicyInput[] = [
  {
    name: "shop",
    rules: [
      { action: "allow", from: [{ namespace: "shop", serviceAccount: "web" }], to: [{ namespace: "shop", serviceAccount: "api" }], ports: [{ protocol: "tcp", port: 8080 }, { protocol: "tcp", port: 9000, endPort: 9003 }] },
      { action: "allow", from: [{ namespace: "shop", serviceAccount: "api" }, { namespace: "finance" }], to: [{ identity: `spiffe://${TD}/ns/shop/sa/db` }], ports: [{ protocol: "tcp", port: 5432 }] },
      { action: "deny", from: [{ namespace: "shop", serviceAccount: "web" }], to: [{ namespace: "shop", serviceAccount: "db" }] },
      { action: "allow", from: [{ cidr: "203.0.113.0/24" }], to: [{ namespace: "shop", serviceAccount: "web" }], ports: [{ protocol: "tcp", port: 443 }] },
    ],
  },
  { name: "finance", rules: [{ action: "allow", from: [{ namespace: "shop", serviceAccount: "api" }], to: [{ namespace: "finance" }] }] },
  { name: "cache", rules: [{ action: "deny", from: [{ namespace: "shop" }], to: [{ namespace: "shop", serviceAccount: "cache" }], ports: [{ protocol: "tcp", port: 6379 }] }] },
];

const parse = (ps: PolicyInput[]) => ps.map((p) => Policy.parse(p));

function compileAll(policies: Policy[]): Map<string, CompiledNodePolicy> {
  const compiler = new PolicyCompiler({ policies, identities: [...ids.values()], nodes: NODES.map((n) => ({ nodeId: n.nodeId, identity: n.identity, labels: n.labels })) });
  return new Map(NODES.map((n) => [n.name, compiler.compile({ identity: n.identity, workloads: n.workloads })]));
}

/** The datapath's verdict (bpf/progs/lib/policy.h): deny wins; an allow passes; else default deny or pass. */
function verdict(compiled: CompiledNodePolicy, src: number, dst: number, proto: number, port: number): "allow" | "drop" {
  // The port's interval of that protocol, and any protocol.
  const hits = compiled.entries.filter((e) => e.srcId === src && e.dstId === dst && ((e.proto === proto && e.port <= port && port <= e.endPort) || e.proto === 0));
  if (hits.some((e) => e.verdict === "deny")) return "drop";
  if (hits.some((e) => e.verdict === "allow")) return "allow";
  return compiled.defaultDeny.includes(dst) ? "drop" : "allow";
}

const validate = (r: K8sObject) => {
  const Model = { WorkloadEntry, ServiceEntry, AuthorizationPolicy }[r.kind as "WorkloadEntry"];
  new Model(r as never).validate();
};

describe("mesh export", () => {
  it("mesh - every exported document validates against Istio's CRD schema", () => {
    const out = exportIstio({
      trustDomain: TD,
      nodes: NODES,
      policies: parse(EXACT),
      services: [{ name: "payments", namespace: "shop", hosts: ["payments.weft.internal"], vip: "100.96.0.10", ports: [{ port: 443, protocol: "tcp" }], endpoints: [{ address: "100.80.2.1", serviceAccount: "api", locality: "eu-west-1/eu-west-1a" }] }],
    });
    const kinds = out.resources.map((r) => r.kind);
    expect(kinds.filter((k) => k === "WorkloadEntry").length, "a WorkloadEntry per node and workload").toBe(4 + 5);
    expect(kinds.filter((k) => k === "ServiceEntry").length).toBe(1);
    expect(kinds.filter((k) => k === "AuthorizationPolicy").length, "ALLOW per destination and DENY where there are deny rules").toBeGreaterThan(4);
    for (const r of out.resources) expect(() => validate(r), `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`).not.toThrow();
    // The validator is real: a wrong field type fails.
    const broken = { ...out.resources[0]!, spec: { ...out.resources[0]!.spec, address: 42 } };
    expect(() => validate(broken), "a number as address").toThrow();
  });

  it("mesh - a workload's entry carries its overlay address, service account, namespace, network and locality", () => {
    const out = exportIstio({ trustDomain: TD, nodes: NODES, policies: [] });
    const db = out.resources.find((r) => r.metadata.name === "azure-1-db")!;
    expect(db.metadata.namespace, "the identity's namespace").toBe("shop");
    expect(db.spec).toEqual({
      address: "100.80.3.1",
      serviceAccount: "db",
      network: "weft",
      locality: "eu-west-1/eu-west-1a",
      labels: { "weft/node": "azure-1", "weft/site": "azure", "weft/workload": "db", "weft/service-account": "db" },
    });
    const host = out.resources.find((r) => r.metadata.name === "aws-1")!;
    expect(host.spec.labels, "node labels that are valid Kubernetes labels").toMatchObject({ tier: "front", "cloud.region": "eu-west-1" });
    expect(out.notes.some((n) => n.includes("weft:namespace")), `invalid label reported: ${out.notes.join("; ")}`).toBe(true);
    expect([validK8sLabel("weft/site", "aws"), validK8sLabel("weft:gateway", "true"), validK8sLabel("a", "x".repeat(64))]).toEqual([true, false, false]);
  });

  it("mesh - a cidr destination is refused with the policy and field named; UDP and ICMP are left to the overlay and reported", () => {
    const bad = parse([{ name: "out", rules: [{ action: "allow", from: [{ namespace: "shop" }], to: [{ cidr: "10.0.0.0/8" }] }] }]);
    expect(() => exportIstio({ trustDomain: TD, nodes: NODES, policies: bad })).toThrow(MeshExportError);
    expect(() => exportIstio({ trustDomain: TD, nodes: NODES, policies: bad })).toThrow("policy out rules[0].to[0]");
    const mixed = parse([{ name: "m", rules: [{ action: "allow", from: [{ namespace: "shop" }], to: [{ namespace: "shop", serviceAccount: "db" }], ports: [{ protocol: "icmp" }, { protocol: "udp", port: 53 }, { protocol: "tcp", port: 5432 }] }] }]);
    const out = exportIstio({ trustDomain: TD, nodes: NODES, policies: mixed });
    const allow = out.resources.find((r) => r.kind === "AuthorizationPolicy")!;
    expect(allow.spec.rules, "only the TCP part").toEqual([{ from: [{ source: { namespaces: ["shop"] } }], to: [{ operation: { ports: ["5432"] } }] }]);
    expect(out.notes.join("\n"), "reported").toContain("icmp, udp/53 enforced by the overlay only");
  });

  it("mesh - a Weft service becomes a ServiceEntry: VIP, DNS name, ports, one endpoint per backend with its target port", () => {
    const backend = (address: string, node: string, site: string, workload: string | undefined, sa: string, port: number): BackendView => ({
      address, port, node, nodeId: "n-0000000000000002", ...(workload ? { workload } : {}), identity: identity("shop", sa), site, subset: "", weight: 1, sharePercent: 50,
      health: "healthy", activeConnections: 0, connects: 0, failures: 0, ejectedBy: [],
    });
    const view: ServiceView = {
      service: Service.parse({ name: "api", namespace: "shop", ports: [{ port: 80, targetPort: 8080 }, { port: 53, protocol: "udp", targetPort: 5353 }, { port: 9000, name: "admin" }], backends: [{ namespace: "shop", serviceAccount: "api" }] }),
      vip: "100.96.0.5",
      dnsName: "api.shop.svc.weft.internal",
      createdAt: "2026-12-06T00:00:00Z",
      updatedAt: "2026-12-06T00:00:00Z",
      // The same address twice (one per port in some views) gives one endpoint.
      backends: [backend("100.80.3.1", "azure-2", "azure", "api", "api", 8080), backend("100.80.2.1", "aws-2", "aws", "api", "api", 8080), backend("100.80.2.1", "aws-2", "aws", "api", "api", 8080)],
      refused: { rateLimited: 0, noBackend: 0 },
    };
    const out = exportIstio({ trustDomain: TD, nodes: [], policies: [], services: meshServices([view]) });
    const entry = out.resources.find((r) => r.kind === "ServiceEntry")!;
    expect(() => validate(entry), "ServiceEntry against Istio's schema").not.toThrow();
    expect(entry.metadata, "in the service's namespace").toEqual({ name: "api", namespace: "shop" });
    const ports = { "tcp-80": 8080, "udp-53": 5353 };
    expect(entry.spec, "the ServiceEntry").toEqual({
      hosts: ["api.shop.svc.weft.internal"],
      addresses: ["100.96.0.5/32"],
      ports: [
        { number: 80, name: "tcp-80", protocol: "TCP" },
        { number: 53, name: "udp-53", protocol: "UDP" },
        { number: 9000, name: "admin", protocol: "TCP" },
      ],
      location: "MESH_INTERNAL",
      resolution: "STATIC",
      endpoints: [
        { address: "100.80.2.1", network: "weft", serviceAccount: "api", labels: { "weft/site": "aws", "weft/workload": "api" }, ports },
        { address: "100.80.3.1", network: "weft", serviceAccount: "api", labels: { "weft/site": "azure", "weft/workload": "api" }, ports },
      ],
    });
  });

  it("mesh - a destination with only deny rules gets an ALLOW without rules (default deny, as in Weft)", () => {
    const out = exportIstio({ trustDomain: TD, nodes: NODES, policies: parse([EXACT[2]!]) });
    const aps = out.resources.filter((r) => r.kind === "AuthorizationPolicy").map((r) => ({ name: r.metadata.name, spec: r.spec }));
    expect(aps).toEqual([
      { name: "weft-allow-sa-cache", spec: { selector: { matchLabels: { "weft/service-account": "cache" } }, action: "ALLOW" } },
      { name: "weft-deny-sa-cache", spec: { selector: { matchLabels: { "weft/service-account": "cache" } }, action: "DENY", rules: [{ from: [{ source: { namespaces: ["shop"] } }], to: [{ operation: { ports: ["6379"] } }] }] } },
    ]);
  });
});

describe("mesh import", () => {
  it("mesh - export then import compiles to the same map entries on every node", () => {
    const policies = parse(EXACT);
    const exported = exportIstio({ trustDomain: TD, nodes: NODES, policies });
    const imported = importIstio(exported.resources, { trustDomain: TD });
    const before = compileAll(policies);
    const after = compileAll(imported.policies);
    for (const n of NODES) {
      const b = before.get(n.name)!;
      const a = after.get(n.name)!;
      expect(a.entries, `${n.name}: entries`).toEqual(b.entries);
      expect(a.defaultDeny, `${n.name}: default deny`).toEqual(b.defaultDeny);
    }
    const total = [...before.values()].reduce((s, c) => s + c.entries.length, 0);
    expect(total, "the round trip compared something").toBeGreaterThan(10);
    expect(imported.notes.filter((n) => n.includes("not an AuthorizationPolicy")).length, "WorkloadEntries skipped").toBe(NODES.length + 5);
  });

  it("mesh - an imported policy yields Istio's verdict matrix: allow by principal and namespace, default deny, deny wins", () => {
    const docs = [
      {
        apiVersion: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        metadata: { name: "db", namespace: "shop" },
        spec: {
          selector: { matchLabels: { "weft/service-account": "db" } },
          action: "ALLOW",
          rules: [
            { from: [{ source: { principals: [`${TD}/ns/shop/sa/api`] } }, { source: { namespaces: ["finance"] } }], to: [{ operation: { ports: ["5432"] } }] },
            { from: [{ source: { principals: [`${TD}/ns/shop/sa/*`] } }], to: [{ operation: { ports: ["9090"] } }] },
          ],
        },
      },
      { apiVersion: "security.istio.io/v1beta1", kind: "AuthorizationPolicy", metadata: { name: "db-deny", namespace: "shop" }, spec: { selector: { matchLabels: { "weft/service-account": "db" } }, action: "DENY", rules: [{ from: [{ source: { principals: [`${TD}/ns/shop/sa/web`] } }] }] } },
    ];
    const { policies } = importIstio(docs, { trustDomain: TD });
    expect(policies.map((p) => p.name)).toEqual(["istio-shop-db", "istio-shop-db-deny"]);
    const azure = compileAll(policies).get("azure-1")!;
    const tcp = PolicyProtocolNumbers.tcp;
    const id = (ns: string, sa: string) => identity(ns, sa).id;
    const cells: [string, number, number, number, "allow" | "drop"][] = [
      ["api → db:5432", id("shop", "api"), id("shop", "db"), 5432, "allow"],
      ["ledger (finance) → db:5432", id("finance", "ledger"), id("shop", "db"), 5432, "allow"],
      ["ledger → db:9090 (shop/* only)", id("finance", "ledger"), id("shop", "db"), 9090, "drop"],
      ["api → db:9090 (shop/*)", id("shop", "api"), id("shop", "db"), 9090, "allow"],
      ["api → db:22 default deny", id("shop", "api"), id("shop", "db"), 22, "drop"],
      ["web → db:9090 deny wins over shop/*", id("shop", "web"), id("shop", "db"), 9090, "drop"],
      ["web → cache:6379 no policy", id("shop", "web"), id("shop", "cache"), 6379, "allow"],
    ];
    const got = cells.map(([what, s, d, port]) => `${what}: ${verdict(azure, s, d, tcp, port)}`);
    expect(got).toEqual(cells.map(([what, , , , v]) => `${what}: ${v}`));
  });

  it("mesh - what L3/L4 cannot express is refused with the field named", () => {
    const ap = (spec: Record<string, unknown>, namespace = "shop") => [{ apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "p", namespace }, spec }];
    const from = [{ source: { principals: [`${TD}/ns/shop/sa/web`] } }];
    const sel = { matchLabels: { "weft/service-account": "db" } };
    const cases: [string, unknown[], string][] = [
      ["an HTTP path", ap({ selector: sel, rules: [{ from, to: [{ operation: { paths: ["/admin"] } }] }] }), "spec.rules[0].to[0].operation.paths"],
      ["an HTTP method", ap({ selector: sel, rules: [{ from, to: [{ operation: { ports: ["80"], methods: ["GET"] } }] }] }), "spec.rules[0].to[0].operation.methods"],
      ["a host", ap({ selector: sel, rules: [{ from, to: [{ operation: { hosts: ["a.example"] } }] }] }), "spec.rules[0].to[0].operation.hosts"],
      ["notPorts", ap({ selector: sel, rules: [{ from, to: [{ operation: { notPorts: ["22"] } }] }] }), "operation.notPorts"],
      ["a condition", ap({ selector: sel, rules: [{ from, when: [{ key: "request.headers[x]", values: ["y"] }] }] }), "spec.rules[0].when"],
      ["a JWT principal", ap({ selector: sel, rules: [{ from: [{ source: { requestPrincipals: ["*"] } }] }] }), "source.requestPrincipals"],
      ["a negated principal", ap({ selector: sel, rules: [{ from: [{ source: { notPrincipals: ["x/ns/a/sa/b"] } }] }] }), "source.notPrincipals"],
      ["any principal", ap({ selector: sel, rules: [{ from: [{ source: { principals: ["*"] } }] }] }), "source.principals[0]"],
      ["a mixed source", ap({ selector: sel, rules: [{ from: [{ source: { principals: [`${TD}/ns/shop/sa/web`], namespaces: ["shop"] } }] }] }), "from[0].source"],
      ["any source", ap({ selector: sel, rules: [{ to: [{ operation: { ports: ["80"] } }] }] }), "spec.rules[0].from"],
      ["AUDIT", ap({ selector: sel, action: "AUDIT", rules: [{ from }] }), "spec.action"],
      ["CUSTOM", ap({ selector: sel, action: "CUSTOM", provider: { name: "opa" }, rules: [{ from }] }), "spec.provider"],
      ["an app label", ap({ selector: { matchLabels: { app: "db" } }, rules: [{ from }] }), "spec.selector.matchLabels.app"],
      ["the root namespace", ap({ rules: [{ from }] }, "istio-system"), "metadata.namespace"],
      ["DENY with no ALLOW for it", ap({ selector: sel, action: "DENY", rules: [{ from }] }), "spec.action"],
      ["ALLOW without rules alone", ap({ selector: sel, action: "ALLOW" }), "spec.rules"],
      ["an ipBlock that is not one", ap({ selector: sel, rules: [{ from: [{ source: { ipBlocks: ["10.0.0.0/33"] } }] }] }), "ipBlocks[0]"],
    ];
    for (const [what, docs, field] of cases) {
      let err: unknown;
      try {
        importIstio(docs, { trustDomain: TD });
      } catch (e) {
        err = e;
      }
      expect(err, `${what}: refused`).toBeInstanceOf(MeshImportError);
      expect((err as MeshImportError).where, `${what}: names the field`).toContain(field);
    }
  });

  it("mesh - consecutive ports come back as ranges, and a DENY is accepted beside a namespace-wide ALLOW", () => {
    expect(portRanges([80, 81, 82, 443, 8080])).toEqual([{ protocol: "tcp", port: 80, endPort: 82 }, { protocol: "tcp", port: 443 }, { protocol: "tcp", port: 8080 }]);
    const docs = [
      { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "ns", namespace: "shop" }, spec: { action: "ALLOW", rules: [{ from: [{ source: { namespaces: ["shop"] } }] }] } },
      { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "no-web", namespace: "shop" }, spec: { selector: { matchLabels: { "weft/service-account": "db" } }, action: "DENY", rules: [{ from: [{ source: { ipBlocks: ["198.51.100.7"] } }] }] } },
    ];
    const { policies } = importIstio(docs, { trustDomain: TD });
    expect(policies[1]?.rules[0]?.from, "a bare address is a /32").toEqual([{ cidr: "198.51.100.7/32" }]);
  });
});
