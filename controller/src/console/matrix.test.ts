/** The policy matrix: verdicts and reasons per identity pair, in agreement with the compiler and the datapath's lookup order. */
import type { Identity, Policy } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { compileForNode } from "../policy/compile.js";
import { policyMatrix, type MatrixInput } from "./matrix.js";

const id = (n: number, sa: string): Identity => ({ id: n, spiffeId: `spiffe://weft.internal/ns/shop/sa/${sa}` });
const web = id(300, "web");
const api = id(301, "api");
const db = id(302, "db");
const nodes: MatrixInput["nodes"] = [
  { nodeId: "n-0000000000000001", name: "a", labels: {}, identity: web },
  { nodeId: "n-0000000000000002", name: "b", labels: { tier: "data" }, identity: api, workloads: [{ name: "db", identity: db }] },
];

function matrix(policies: Policy[]) {
  const m = policyMatrix({ policies, identities: [web, api, db], nodes });
  return (s: Identity, d: Identity) => m.cells.find((c) => c.source === s.id && c.destination === d.id)!;
}

describe("console/matrix", () => {
  it("matrix - no policy: every pair is open", () => {
    const m = policyMatrix({ policies: [], identities: [web, api, db], nodes });
    expect(m.identities.map((i) => i.id), "identities in use").toEqual([api.id, db.id, web.id]);
    expect(new Set(m.cells.map((c) => c.verdict)), "verdicts").toEqual(new Set(["open"]));
    expect(m.cells.length, "cells").toBe(9);
    expect(m.identities.find((i) => i.id === db.id)?.hosts, "hosts of db").toEqual(["b/db"]);
  });

  it("matrix - an allow on a port is partial with its rule; other sources to that destination are default-denied; others stay open", () => {
    const cell = matrix([{ version: 1, name: "p", rules: [{ action: "allow", from: [{ namespace: "shop", serviceAccount: "web" }], to: [{ namespace: "shop", serviceAccount: "api" }], ports: [{ protocol: "tcp", port: 7000 }] }] }]);
    expect(cell(web, api), "web → api").toMatchObject({ verdict: "partial", ports: [{ protocol: "tcp", port: 7000, verdict: "allow", reasons: [{ policy: "p", rule: 0, action: "allow" }] }] });
    expect(cell(web, api).why, "why").toBe("tcp/7000 allowed by p#0");
    expect(cell(db, api).verdict, "db → api").toBe("deny");
    expect(cell(db, api).why, "why db → api").toMatch(/^default deny: p#0 selects the destination/);
    expect(cell(api, web).verdict, "api → web (no policy selects web)").toBe("open");
  });

  it("matrix - a deny on any port wins over an allowed port, as in the datapath; the deny's rule is the reason", () => {
    const cell = matrix([
      { version: 1, name: "allow", rules: [{ action: "allow", from: [{ labels: { tier: "data" } }], to: [{ identity: web.spiffeId }], ports: [{ protocol: "tcp", port: 80 }] }] },
      { version: 1, name: "deny", rules: [{ action: "deny", from: [{ identity: api.spiffeId }], to: [{ identity: web.spiffeId }], ports: [{ protocol: "tcp" }] }] },
    ]);
    expect(cell(api, web).verdict, "api → web").toBe("deny");
    expect(cell(api, web).why, "why").toBe("denied by deny#0");
    expect(cell(db, web).verdict, "db → web (labels select node identities only)").toBe("deny");
  });

  it("matrix - an allow of every protocol is allow; every cell's entries are exactly what the compiler gives that destination", () => {
    const policies: Policy[] = [
      { version: 1, name: "all", rules: [{ action: "allow", from: [{ namespace: "shop" }], to: [{ identity: db.spiffeId }] }] },
      { version: 1, name: "ports", rules: [{ action: "allow", from: [{ identity: web.spiffeId }], to: [{ identity: api.spiffeId }], ports: [{ protocol: "udp", port: 53 }, { protocol: "any", port: 9000 }] }] },
    ];
    const m = policyMatrix({ policies, identities: [web, api, db], nodes });
    expect(m.cells.find((c) => c.source === web.id && c.destination === db.id)?.verdict, "web → db").toBe("allow");
    for (const dst of [web, api, db]) {
      const compiled = compileForNode({ policies, identities: [web, api, db], nodes }, { identity: dst });
      const fromMatrix = m.cells
        .filter((c) => c.destination === dst.id)
        .flatMap((c) => c.ports.map((p) => `${c.source}/${p.protocol}/${p.port}-${p.endPort ?? (p.port === 0 ? 65535 : p.port)}/${p.verdict}`))
        .sort();
      const names: Record<number, string> = { 0: "any", 1: "icmp", 6: "tcp", 17: "udp" };
      const fromCompiler = compiled.entries.map((e) => `${e.srcId}/${names[e.proto]}/${e.port}-${e.endPort}/${e.verdict}`).sort();
      expect(fromMatrix, `entries to ${dst.spiffeId}`).toEqual(fromCompiler);
    }
  });
});
