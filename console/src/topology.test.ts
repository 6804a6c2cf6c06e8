import { describe, expect, it } from "vitest";
import { layoutPositions, type GraphElement } from "./topology.js";

const node = (id: string, classes: string, parent?: string, name?: string): GraphElement => ({ group: "nodes", data: { id, label: name ?? id, name, parent }, classes });
const edge = (source: string, target: string, classes: string): GraphElement => ({ group: "edges", data: { id: `e:${target}`, source, target }, classes });

/** Two clouds (aws with two sites), hosts with workloads and a gateway's routes, one withheld route. */
const graph: GraphElement[] = [
  node("cloud:aws", "cloud"),
  node("site:aws:a", "site", "cloud:aws"),
  node("site:aws:b", "site", "cloud:aws"),
  node("n2", "host online", "site:aws:a", "aws-2"),
  node("n1", "host online gateway", "site:aws:a", "aws-1"),
  node("wl:n1:web", "workload", "site:aws:a"),
  node("wl:n1:api", "workload", "site:aws:a"),
  node("routes:n1", "route", "site:aws:a"),
  node("n3", "host online", "site:aws:b", "aws-3"),
  node("cloud:gcp", "cloud"),
  node("site:gcp:g", "site", "cloud:gcp"),
  node("n4", "host online", "site:gcp:g", "gcp-1"),
  node("routes:site:gcp:g", "route withheld", "site:gcp:g"),
  edge("n1", "wl:n1:web", "hosts"),
  edge("n1", "wl:n1:api", "hosts"),
  edge("n1", "routes:n1", "advertises"),
  { group: "edges", data: { id: "t:n1:n4", source: "n1", target: "n4" }, classes: "tunnel fresh path-public" },
];

describe("console topology layout", () => {
  const at = layoutPositions(graph);
  const leaves = graph.filter((e) => e.group === "nodes" && !/\b(cloud|site)\b/.test(e.classes)).map((e) => String(e.data["id"]));

  it("topology layout - every leaf has its own place", () => {
    expect(leaves.filter((id) => !at.has(id)), "leaves without a position").toEqual([]);
    const places = leaves.map((id) => `${at.get(id)!.x},${at.get(id)!.y}`);
    expect(new Set(places).size, `distinct places for ${leaves.length} leaves: ${places.join(" ")}`).toBe(leaves.length);
  });

  it("topology layout - hosts in a row by name, their workloads and routes in a column below", () => {
    const [n1, n2] = [at.get("n1")!, at.get("n2")!];
    expect(n1.y, "hosts of one site share a row").toBe(n2.y);
    expect(n1.x, "aws-1 left of aws-2").toBeLessThan(n2.x);
    for (const id of ["wl:n1:web", "wl:n1:api", "routes:n1"]) {
      expect(at.get(id)!.x, `${id} under its host`).toBe(n1.x);
      expect(at.get(id)!.y, `${id} below its host`).toBeGreaterThan(n1.y);
    }
    expect(at.get("routes:site:gcp:g")!.y, "a withheld route sits in its site's row").toBe(at.get("n4")!.y);
  });

  it("topology layout - a cloud's sites are stacked and clouds do not overlap", () => {
    expect(at.get("n3")!.y, "site b below site a (and below a's workloads)").toBeGreaterThan(at.get("routes:n1")!.y);
    const awsRight = Math.max(...["n1", "n2", "n3", "wl:n1:web"].map((id) => at.get(id)!.x));
    expect(at.get("n4")!.x, "gcp to the right of every aws node").toBeGreaterThan(awsRight);
  });

  it("topology layout - the same graph gives the same places (the map does not move between refreshes)", () => {
    expect([...layoutPositions([...graph].reverse())].sort()).toEqual([...at].sort());
  });
});
