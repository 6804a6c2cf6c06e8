import { describe, expect, it } from "vitest";
import { HealthReport, Service, serviceDnsName, serviceKey, serviceRef, targetPortOf } from "./service.js";

const base = { name: "api", namespace: "shop", ports: [{ port: 80, targetPort: 8080 }], backends: [{ namespace: "shop", serviceAccount: "api" }] };

/** The first issue of a failed parse as `path: message`. */
function issue(input: unknown): string {
  const r = Service.safeParse(input);
  if (r.success) return "(valid)";
  const i = r.error.issues[0]!;
  return `${i.path.map(String).join(".")}: ${i.message}`;
}

describe("protocol service", () => {
  it("service - a minimal document gets the documented defaults", () => {
    const s = Service.parse(base);
    expect(s).toMatchObject({ version: 1, algorithm: "round-robin", locality: "site", ports: [{ port: 80, protocol: "tcp", targetPort: 8080 }] });
    expect([serviceKey(s), serviceRef(s), serviceDnsName(s, "weft.internal"), targetPortOf({ port: 53 })]).toEqual(["shop.api", "shop/api", "api.shop.svc.weft.internal", 53]);
    expect(Service.parse({ ...base, ports: [{ port: 53, protocol: "UDP" }] }).ports[0]!.protocol, "protocol case-insensitive").toBe("udp");
  });

  it("service - unknown fields, algorithms, localities and protocols are refused, naming the field", () => {
    expect(issue({ ...base, extra: 1 })).toMatch(/Unrecognized key/);
    expect(issue({ ...base, algorithm: "random" })).toBe("algorithm: must be one of round-robin, least-connections, weighted, ewma-latency");
    expect(issue({ ...base, locality: "region" })).toBe("locality: must be one of site, cloud, any");
    expect(issue({ ...base, ports: [{ port: 80, protocol: "sctp" }] })).toBe("ports.0.protocol: must be tcp or udp");
    expect(issue({ ...base, ports: [{ port: 0 }] })).toBe("ports.0.port: must be 1-65535");
    expect(issue({ ...base, ports: [] })).toBe("ports: needs at least one port");
    expect(issue({ ...base, name: "Api" })).toMatch(/^name: must be a DNS label/);
    expect(issue({ ...base, ports: [{ port: 80 }, { port: 80, protocol: "tcp" }] })).toBe("ports.1.port: duplicate port tcp/80 (also ports[0])");
  });

  it("service - backend selectors: exactly one of identity, namespace, labels; serviceAccount needs a namespace", () => {
    expect(issue({ ...base, backends: [{}] })).toBe("backends.0: must name exactly one of identity, namespace (with serviceAccount), labels; got none");
    expect(issue({ ...base, backends: [{ namespace: "shop", labels: { a: "b" } }] })).toBe("backends.0: must name exactly one of identity, namespace (with serviceAccount), labels; got namespace and labels");
    expect(issue({ ...base, backends: [{ serviceAccount: "api", labels: { a: "b" } }] })).toBe("backends.0.serviceAccount: needs namespace");
    expect(issue({ ...base, backends: [{ labels: {} }] })).toBe("backends.0.labels: must name at least one label");
    expect(issue({ ...base, backends: [{ identity: "spiffe://x/ns/a/b" }] })).toMatch(/^backends.0.identity: must be spiffe/);
    expect(issue({ ...base, backends: [{ namespace: "shop", sites: [] }] })).toMatch(/^backends.0.sites/);
    expect(Service.safeParse({ ...base, backends: [{ labels: { role: "api" }, sites: ["aws"], nodes: ["aws-1"] }] }).success).toBe(true);
  });

  it("service - weighted needs subsets and other algorithms refuse them; weights bounded, one above 0, names unique", () => {
    const subsets = [
      { name: "stable", weight: 90, backends: [{ namespace: "shop", serviceAccount: "api" }] },
      { name: "canary", weight: 10, backends: [{ namespace: "shop", serviceAccount: "api-canary" }] },
    ];
    const weighted = { ...base, backends: undefined, algorithm: "weighted", subsets };
    expect(issue(weighted)).toBe("(valid)");
    expect(issue({ ...base, algorithm: "weighted" })).toBe("subsets: algorithm weighted needs subsets with weights");
    expect(issue({ ...weighted, algorithm: "round-robin" })).toBe("subsets: subsets carry weights: use algorithm weighted, or list backends for round-robin");
    expect(issue({ ...weighted, backends: base.backends })).toBe("backends: give exactly one of backends (all alike) or subsets (weighted groups)");
    expect(issue({ ...weighted, subsets: subsets.map((s) => ({ ...s, weight: 0 })) })).toBe("subsets: at least one subset needs a weight above 0");
    expect(issue({ ...weighted, subsets: [subsets[0], { ...subsets[1]!, name: "stable" }] })).toBe("subsets.1.name: duplicate subset stable (also subsets[0].name)");
    expect(issue({ ...weighted, subsets: [{ ...subsets[0]!, weight: 10001 }] })).toBe("subsets.0.weight: must be 0-10000");
  });

  it("service - health checks: bounded interval, timeout within the interval, a path only for http", () => {
    expect(Service.parse({ ...base, healthCheck: { protocol: "tcp" } }).healthCheck).toEqual({ protocol: "tcp", intervalMs: 1000, healthyThreshold: 2, unhealthyThreshold: 2 });
    expect(issue({ ...base, healthCheck: { protocol: "tcp", path: "/x" } })).toBe("healthCheck.path: only an http check has a path");
    expect(issue({ ...base, healthCheck: { protocol: "http", intervalMs: 50 } })).toBe("healthCheck.intervalMs: at least 100 ms");
    expect(issue({ ...base, healthCheck: { protocol: "http", intervalMs: 200, timeoutMs: 300 } })).toBe("healthCheck.timeoutMs: must not exceed intervalMs (200)");
    expect(issue({ ...base, healthCheck: { protocol: "http", path: "no-slash" } })).toMatch(/^healthCheck.path: must be an absolute path/);
    expect(issue({ ...base, healthCheck: { protocol: "grpc" } })).toBe("healthCheck.protocol: must be tcp or http");
  });

  it("service - rate limits and a requested VIP", () => {
    expect(Service.parse({ ...base, rateLimit: { connectionsPerSecond: 100 } }).rateLimit).toEqual({ connectionsPerSecond: 100 });
    expect(issue({ ...base, rateLimit: { connectionsPerSecond: 0 } })).toMatch(/^rateLimit.connectionsPerSecond/);
    expect(issue({ ...base, vip: "100.96.0.300" })).toMatch(/^vip: must be an IPv4 address/);
  });

  it("service - agent reports are strict and bounded", () => {
    const ok = { version: 1, full: true, sentAt: "2026-01-01T00:00:00Z", results: [{ service: "shop/api", address: "100.80.2.1", port: 8080, healthy: true, since: "x" }] };
    expect(HealthReport.safeParse(ok).success).toBe(true);
    expect(HealthReport.safeParse({ ...ok, results: [{ ...ok.results[0], extra: 1 }] }).success, "unknown field").toBe(false);
    expect(HealthReport.safeParse({ ...ok, results: [{ ...ok.results[0], address: "not-an-ip" }] }).success).toBe(false);
    expect(HealthReport.safeParse({ ...ok, results: Array.from({ length: 4097 }, () => ok.results[0]) }).success, "too many results").toBe(false);
  });
});
