import type { ServiceView } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { UsageError } from "../errors.js";
import { backendRows, parseServiceFile, parseServiceRef, serviceRows } from "./services.js";

const doc = `name: api
namespace: shop
ports: [{ port: 80, targetPort: 8080 }]
backends: [{ namespace: shop, serviceAccount: api }]
`;

describe("cli service", () => {
  it("cli - a service file holds one service, a list or --- documents; each is checked before any is sent", () => {
    expect(parseServiceFile(doc).map((s) => s.name)).toEqual(["api"]);
    expect(parseServiceFile(`${doc}---\n${doc.replace("name: api", "name: api2")}`).map((s) => s.name)).toEqual(["api", "api2"]);
    expect(() => parseServiceFile(`${doc}---\n${doc}`, "svc.yaml")).toThrow("svc.yaml service 2: service shop/api appears twice");
    expect(() => parseServiceFile(doc.replace("targetPort: 8080", "targetPort: 0"), "svc.yaml")).toThrow("svc.yaml is invalid: ports[0].targetPort: must be 1-65535");
    expect(() => parseServiceFile(`${doc}algorithm: weighted\n`, "svc.yaml")).toThrow(/subsets: algorithm weighted needs subsets with weights/);
    expect(() => parseServiceFile("", "svc.yaml")).toThrow("svc.yaml: holds no service");
    expect(() => parseServiceFile("a: [", "svc.yaml")).toThrow(/svc.yaml: not YAML or JSON/);
  });

  it("cli - services are named <namespace>/<name>", () => {
    expect(parseServiceRef("shop/api")).toEqual({ namespace: "shop", name: "api" });
    for (const bad of ["api", "shop/api/x", "Shop/api", "shop/", "/api"]) expect(() => parseServiceRef(bad), bad).toThrow(UsageError);
  });

  it("cli - list and get rows show the VIP, name, health and each backend's locality, share and numbers", () => {
    const view = {
      service: { name: "api", namespace: "shop", ports: [{ port: 80, protocol: "tcp" }], algorithm: "round-robin", locality: "site" },
      vip: "100.96.0.1",
      dnsName: "api.shop.svc.weft.internal",
      backends: [
        { address: "100.80.2.1", port: 8080, node: "aws-2", workload: "api", site: "aws", cloud: "aws", subset: "", weight: 1, sharePercent: 100, health: "healthy", activeConnections: 2, connects: 10, failures: 0, latencyMs: 0.5, ejectedBy: [] },
        { address: "100.80.4.1", port: 8080, node: "azure-2", site: "azure", subset: "", weight: 1, sharePercent: 0, health: "unhealthy", healthReason: "node offline (no heartbeat)", activeConnections: 0, connects: 3, failures: 3, ejectedBy: ["aws-1"] },
      ],
      refused: { rateLimited: 0, noBackend: 0 },
    } as unknown as ServiceView;
    expect(serviceRows([view])).toEqual([["shop/api", "100.96.0.1", "api.shop.svc.weft.internal", "tcp/80", "round-robin", "site", "1/2", "aws,azure"]]);
    expect(backendRows(view)).toEqual([
      ["100.80.2.1:8080", "api@aws-2", "aws", "aws", "-", "1", "100%", "healthy", "2", "10", "0", "0.50ms", "-"],
      ["100.80.4.1:8080", "azure-2", "azure", "-", "-", "1", "0%", "unhealthy (node offline (no heartbeat))", "0", "3", "3", "-", "aws-1"],
    ]);
  });
});
