import { Service, type NodeRecord, type Policy, type ServiceInput, type ServiceRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { PolicyCompiler } from "../policy/compile.js";
import { ServicesCompiler } from "./compile.js";
import { PolicyReach } from "./reach.js";
import { resolveBackends, type ResolvedBackend } from "./resolve.js";
import { serviceView, shares } from "./views.js";

const TD = "weft.internal";
const id = (ns: string, sa: string, n: number) => ({ id: n, spiffeId: `spiffe://${TD}/ns/${ns}/sa/${sa}` });

let seq = 0;
function node(name: string, site: string, o: Partial<NodeRecord> = {}): NodeRecord {
  seq++;
  return {
    version: 1,
    nodeId: `n-${seq.toString(16).padStart(16, "0")}`,
    name,
    site,
    wireguardPublicKey: "A".repeat(43) + "=",
    natsPublicKey: "U" + "A".repeat(55),
    overlayAddress: `100.64.0.${seq}`,
    endpoints: {},
    labels: {},
    identity: id("infra", "host", 300),
    joinKeyId: "k",
    enrolledAt: "",
    ...o,
  };
}

const webA = node("aws-1", "aws", { workloads: [{ name: "web", address: "100.80.1.1", identity: id("shop", "web", 400) }], instance: { provider: "aws", account: "1", id: "i-1" } });
const apiA = node("aws-2", "aws", { workloads: [{ name: "api", address: "100.80.2.1", identity: id("shop", "api", 401) }], labels: { "cloud.provider": "aws" } });
const apiZ = node("azure-2", "azure", { workloads: [{ name: "api", address: "100.80.4.1", identity: id("shop", "api", 401) }] });
const dbZ = node("azure-1", "azure", { workloads: [{ name: "db", address: "100.80.3.1", identity: id("shop", "db", 402) }], labels: { tier: "data" } });
const NODES = [webA, apiA, apiZ, dbZ];

function record(spec: ServiceInput, vip = "100.96.0.1"): ServiceRecord {
  return { version: 1, spec: Service.parse(spec), vip, createdAt: "t0", updatedAt: "t1" };
}

function compiler(services: ServiceRecord[], policies: Policy[] = [], healthy: (s: string, b: ResolvedBackend) => boolean = () => true) {
  const identities = NODES.flatMap((n) => [n.identity!, ...(n.workloads ?? []).map((w) => w.identity)]);
  const policy = new PolicyCompiler({ policies, identities, nodes: NODES.map((n) => ({ nodeId: n.nodeId, identity: n.identity, labels: n.labels })) });
  return new ServicesCompiler({ services, nodes: NODES, reach: new PolicyReach(policy), healthy, zone: TD, serviceCidr: "100.96.0.0/16" });
}

const API: ServiceInput = { name: "api", namespace: "shop", ports: [{ port: 80, targetPort: 8080 }], backends: [{ namespace: "shop", serviceAccount: "api" }] };

describe("services compile", () => {
  it("resolve - selectors: namespace/serviceAccount and identity match workloads and nodes, labels match nodes, sites and nodes narrow", () => {
    const addrs = (spec: ServiceInput) => resolveBackends(Service.parse(spec), NODES).map((b) => b.address);
    expect(addrs(API), "shop/api workloads").toEqual(["100.80.2.1", "100.80.4.1"]);
    expect(addrs({ ...API, backends: [{ namespace: "shop", serviceAccount: "api", sites: ["azure"] }] }), "only azure").toEqual(["100.80.4.1"]);
    expect(addrs({ ...API, backends: [{ namespace: "shop", serviceAccount: "api", nodes: ["aws-2"] }] }), "only aws-2").toEqual(["100.80.2.1"]);
    expect(addrs({ ...API, backends: [{ identity: `spiffe://${TD}/ns/shop/sa/db` }] })).toEqual(["100.80.3.1"]);
    expect(addrs({ ...API, backends: [{ labels: { tier: "data" } }] }), "labels: the node itself, not its workloads").toEqual([dbZ.overlayAddress]);
    expect(addrs({ ...API, backends: [{ namespace: "infra" }] }), "node identities by namespace").toEqual(NODES.map((n) => n.overlayAddress));
    const b = resolveBackends(Service.parse(API), NODES);
    expect(b[0], "a backend carries its node, site, cloud and identity").toMatchObject({ node: "aws-2", workload: "api", site: "aws", cloud: "aws", identity: { id: 401 }, subset: "", weight: 1 });
    expect(b[1]?.cloud, "no instance and no cloud label: no cloud").toBeUndefined();
  });

  it("resolve - subsets: a backend in two subsets belongs to the first, with its weight", () => {
    const spec = Service.parse({
      ...API,
      backends: undefined,
      algorithm: "weighted",
      subsets: [
        { name: "canary", weight: 10, backends: [{ namespace: "shop", serviceAccount: "api", sites: ["azure"] }] },
        { name: "stable", weight: 90, backends: [{ namespace: "shop", serviceAccount: "api" }] },
      ],
    });
    expect(resolveBackends(spec, NODES).map((b) => [b.address, b.subset, b.weight])).toEqual([
      ["100.80.2.1", "stable", 90],
      ["100.80.4.1", "canary", 10],
    ]);
  });

  it("compile - a node gets the services its local identities may reach, with access per identity and port, and its own site/cloud", () => {
    const c = compiler([record(API)]);
    const got = c.compile(webA);
    expect(got.self).toEqual({ site: "aws", cloud: "aws" });
    expect(got.services.map((s) => s.name)).toEqual(["api"]);
    const svc = got.services[0]!;
    expect(svc.ports).toEqual([{ port: 80, protocol: "tcp", targetPort: 8080 }]);
    expect(svc.access, "host identity 300 and web 400 may reach both").toEqual({ "300": [[0, 1]], "400": [[0, 1]] });
    expect(svc.backends.map((b) => [b.address, b.node, b.workload, b.site, b.healthy])).toEqual([
      ["100.80.2.1", "aws-2", "api", "aws", true],
      ["100.80.4.1", "azure-2", "api", "azure", true],
    ]);
    expect(got.checks, "no health check configured: nothing to check").toEqual([]);
  });

  it("compile - policy: a backend the source may not reach is left out of its access (deny wins, default deny), never the record's backends", () => {
    const policies: Policy[] = [
      { version: 1, name: "p", rules: [{ action: "allow", from: [{ namespace: "shop", serviceAccount: "web" }], to: [{ namespace: "shop", serviceAccount: "api" }], ports: [{ protocol: "tcp", port: 8080 }] }] },
    ];
    const mixed = record({ ...API, name: "mixed", backends: [{ namespace: "shop" }] });
    const got = compiler([mixed], policies).compile(webA).services[0]!;
    const addrOf = (i: number) => got.backends[i]!.address;
    // api is default-deny now (a rule targets it): web may (port 8080), the host identity may not; db has no policy: open to both.
    expect((got.access["400"]?.[0] ?? []).map(addrOf).sort(), "web").toEqual(["100.80.1.1", "100.80.2.1", "100.80.3.1", "100.80.4.1"]);
    expect((got.access["300"]?.[0] ?? []).map(addrOf).sort(), "host: not api").toEqual(["100.80.1.1", "100.80.3.1"]);
    const other = compiler([record({ ...API, ports: [{ port: 90, targetPort: 9090 }] })], policies).compile(webA);
    expect(other.services, "a port policy does not allow: no identity has access, so the service is not compiled for the node").toEqual([]);
    const deny: Policy[] = [{ version: 1, name: "d", rules: [{ action: "deny", from: [{ namespace: "shop", serviceAccount: "web" }], to: [{ namespace: "shop", serviceAccount: "db" }] }] }];
    const withDeny = compiler([mixed], deny).compile(webA).services[0]!;
    expect((withDeny.access["400"]?.[0] ?? []).map((i) => withDeny.backends[i]!.address), "deny: db never offered to web").not.toContain("100.80.3.1");
  });

  it("compile - health travels with each backend; checks go to the backend's own node", () => {
    const spec: ServiceInput = { ...API, healthCheck: { protocol: "http", intervalMs: 250 } };
    const c = compiler([record(spec)], [], (_s, b) => b.address !== "100.80.4.1");
    expect(c.compile(webA).services[0]!.backends.map((b) => b.healthy)).toEqual([true, false]);
    expect(c.compile(webA).checks, "web's node hosts no backend").toEqual([]);
    expect(c.compile(apiZ).checks).toEqual([
      { service: "shop/api", address: "100.80.4.1", workload: "api", port: 8080, protocol: "http", path: "/", intervalMs: 250, timeoutMs: 250, healthyThreshold: 2, unhealthyThreshold: 2 },
    ]);
  });

  it("views - shares: equal among healthy backends; weighted: subset weight split among its healthy ones", () => {
    const b = (address: string, subset: string, weight: number) => ({ address, subset, weight }) as ResolvedBackend;
    expect(shares([b("a", "", 1), b("b", "", 1), b("c", "", 1)], [true, false, true], false)).toEqual([50, 0, 50]);
    expect(shares([b("a", "s", 90), b("b", "s", 90), b("c", "c", 10)], [true, true, true], true)).toEqual([45, 45, 10]);
    expect(shares([b("a", "s", 90), b("c", "c", 10)], [false, false], true)).toEqual([0, 0]);
  });

  it("views - a service view names its DNS name, each backend's health and the clients' numbers", () => {
    const r = record(API);
    const backends = resolveBackends(r.spec, NODES);
    const view = serviceView({
      record: r,
      backends,
      zone: TD,
      health: (b) => (b.address === "100.80.2.1" ? { state: "healthy" } : { state: "unhealthy", reason: "node offline (no heartbeat)" }),
      stats: new Map([["shop/api|100.80.2.1", { activeConnections: 3, connects: 10, failures: 1, latencyMs: 0.5, ejectedBy: ["aws-1"] }]]),
      reports: new Map([["n-x", { version: 1, sentAt: "", backends: [], drops: [{ service: "shop/api", sourceId: 400, rateLimited: 7, noBackend: 2 }] }]]),
    });
    expect(view.dnsName).toBe("api.shop.svc.weft.internal");
    expect(view.backends.map((b) => [b.address, b.port, b.health, b.sharePercent, b.activeConnections, b.ejectedBy])).toEqual([
      ["100.80.2.1", 8080, "healthy", 100, 3, ["aws-1"]],
      ["100.80.4.1", 8080, "unhealthy", 0, 0, []],
    ]);
    expect(view.refused).toEqual({ rateLimited: 7, noBackend: 2 });
  });
});
