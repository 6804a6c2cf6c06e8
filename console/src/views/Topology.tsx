/**
 * The topology map: cytoscape draws clouds, sites, nodes, workloads and site routes as compound
 * nodes placed by a fixed layout (topology.ts `layoutPositions`: clouds side by side, hosts in a row
 * per site, their workloads and routes below); tunnels are colored by handshake age and dashed
 * when a NAT is in the path. Beside the map, the same nodes as a list of buttons (what a screen
 * reader and the tests use), each opening the node's detail.
 */
import cytoscape, { type Core } from "cytoscape";
import type { InventoryView, NodeView } from "@weft/protocol";
import { useEffect, useRef, useState } from "preact/hooks";
import { layoutPositions, topologyElements, tunnels } from "../topology.js";

const STYLE: cytoscape.StylesheetJson = [
  { selector: "node", style: { label: "data(label)", "font-size": 11, "text-wrap": "wrap", color: "#1b1f24" } },
  { selector: ".cloud", style: { "background-color": "#eef2f7", "border-color": "#7b8794", "border-width": 1, "text-valign": "top", "font-weight": "bold", "font-size": 13 } },
  { selector: ".site", style: { "background-color": "#ffffff", "border-color": "#9aa5b1", "border-style": "dashed", "border-width": 1, "text-valign": "top" } },
  { selector: ".host", style: { shape: "round-rectangle", width: 86, height: 36, "background-color": "#d7ecff", "border-color": "#1f6fb2", "border-width": 2, "text-valign": "center", "text-halign": "center", "font-size": 10 } },
  { selector: ".host.offline, .host.never-seen", style: { "background-color": "#f1f1f1", "border-color": "#8a8a8a", "border-style": "dashed" } },
  { selector: ".host.gateway", style: { "border-width": 4, "border-color": "#0b4f8a" } },
  { selector: ".host:selected", style: { "border-color": "#c2410c", "border-width": 4 } },
  { selector: ".workload", style: { shape: "ellipse", width: 18, height: 18, "background-color": "#a7f3d0", "border-color": "#047857", "border-width": 1, "font-size": 9, "text-valign": "bottom" } },
  { selector: ".route", style: { shape: "diamond", width: 22, height: 22, "background-color": "#fde68a", "border-color": "#92400e", "border-width": 1, "font-size": 9, "text-valign": "bottom" } },
  { selector: ".route.withheld", style: { "background-color": "#fecaca" } },
  { selector: "edge", style: { width: 1.5, "curve-style": "bezier", "line-color": "#9aa5b1" } },
  { selector: ".hosts, .advertises", style: { width: 1, "line-color": "#b6c2cf" } },
  // Tunnels arc above the row (hosts of a site share a row, so straight lines would run through them).
  {
    selector: ".tunnel",
    style: {
      "curve-style": "unbundled-bezier",
      "control-point-weights": 0.5,
      "control-point-distances": (e: cytoscape.EdgeSingular) => {
        const [a, b] = [e.source().position(), e.target().position()];
        return Math.round(Math.min(160, 0.18 * Math.hypot(b.x - a.x, b.y - a.y)));
      },
    },
  },
  { selector: ".tunnel.fresh", style: { "line-color": "#15803d", width: 2 } },
  { selector: ".tunnel.aging", style: { "line-color": "#d97706", width: 2 } },
  { selector: ".tunnel.stale", style: { "line-color": "#b91c1c", width: 2 } },
  { selector: ".tunnel.never", style: { "line-color": "#9ca3af", "line-style": "dotted" } },
  { selector: ".tunnel.path-nat", style: { "line-style": "dashed" } },
];

export interface TopologyProps {
  nodes: NodeView[];
  inventory: InventoryView | undefined;
  onOpen: (nodeId: string) => void;
}

export function Topology({ nodes, inventory, onOpen }: TopologyProps) {
  const box = useRef<HTMLDivElement>(null);
  const cy = useRef<Core>();
  const shape = useRef("");
  // The node list mirrors what the map holds (read back from cytoscape after each render).
  const [onMap, setOnMap] = useState<{ id: string; name: string; status: string }[]>([]);

  useEffect(() => {
    if (!box.current) return;
    cy.current = cytoscape({ container: box.current, style: STYLE, wheelSensitivity: 0.3, boxSelectionEnabled: false, autoungrabify: false });
    cy.current.on("tap", "node.host", (e) => onOpen(e.target.id() as string));
    return () => cy.current?.destroy();
  }, []);

  useEffect(() => {
    const c = cy.current;
    if (!c) return;
    const elements = topologyElements(nodes, inventory, Date.now());
    const nextShape = elements.filter((e) => e.group === "nodes").map((e) => e.data["id"]).sort().join(",");
    // Update in place: an element kept keeps its position (re-adding everything put every node at
    // the origin on each refresh, and the layout runs only when the set of nodes changes).
    const wanted = new Map(elements.map((e) => [String(e.data["id"]), e]));
    c.batch(() => {
      c.elements().forEach((el) => {
        const want = wanted.get(el.id());
        if (!want || (el.isNode() && (want.data["parent"] ?? undefined) !== (el.data("parent") ?? undefined))) el.remove();
      });
      for (const [id, e] of wanted) {
        const el = c.getElementById(id);
        if (el.nonempty()) {
          el.data(e.data);
          el.classes(e.classes);
        } else {
          c.add(e as cytoscape.ElementDefinition);
        }
      }
    });
    if (nextShape !== shape.current) {
      shape.current = nextShape;
      const at = layoutPositions(elements);
      c.layout({ name: "preset", animate: false, fit: false, positions: (n: cytoscape.NodeSingular) => at.get(n.id()) ?? { x: 0, y: 0 } } as cytoscape.LayoutOptions).run();
      c.fit(undefined, 20);
    }
    setOnMap(c.nodes(".host").map((n) => ({ id: n.id(), name: String(n.data("name")), status: String(n.data("status")) })).sort((a, b) => a.name.localeCompare(b.name)));
  }, [nodes, inventory]);

  const t = tunnels(nodes, Date.now());
  const counts = { fresh: 0, aging: 0, stale: 0, never: 0 };
  for (const x of t) counts[x.age]++;
  return (
    <section aria-labelledby="topology-title" class="topology">
      <h2 id="topology-title">Topology</h2>
      <p class="legend">
        Tunnels: <span class="swatch fresh">fresh (≤ 135 s) {counts.fresh}</span> <span class="swatch aging">aging (≤ 180 s) {counts.aging}</span>{" "}
        <span class="swatch stale">stale {counts.stale}</span> <span class="swatch never">no handshake {counts.never}</span> · dashed: through a NAT · thick border: site gateway · diamonds: site
        routes
      </p>
      <div class="topology-body">
        <div ref={box} class="map" role="img" aria-label={`Topology map: ${onMap.length} nodes, ${t.length} tunnels`} data-testid="topology-map" data-nodes={onMap.length} />
        <nav aria-label="Nodes on the map" class="node-list">
          <h3>Nodes ({onMap.length})</h3>
          <ul data-testid="map-nodes">
            {onMap.map((n) => (
              <li key={n.id}>
                <button type="button" data-node={n.name} onClick={() => onOpen(n.id)}>
                  {n.name}
                </button>{" "}
                <span class={`status ${n.status}`}>{n.status}</span>
              </li>
            ))}
          </ul>
        </nav>
      </div>
    </section>
  );
}
