/** Live flows per identity pair, from the agents' reports: the last interval, totals, and drops by reason. */
import type { FlowsView } from "@weft/protocol";
import { bytes, shortId } from "./format.js";

const drops = (d: Record<string, number>) =>
  Object.entries(d)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ") || "none";

export function Flows({ flows }: { flows: FlowsView | undefined }) {
  if (!flows) return <p>Loading flows…</p>;
  return (
    <section aria-labelledby="flows-title">
      <h2 id="flows-title">Flows</h2>
      <p>
        Reports from agents: {flows.reports.accepted} accepted, {flows.reports.refused} refused.
      </p>
      <table data-testid="flows">
        <thead>
          <tr>
            <th scope="col">Source</th>
            <th scope="col">Destination</th>
            <th scope="col">Last interval</th>
            <th scope="col">Packets</th>
            <th scope="col">Bytes</th>
            <th scope="col">Drops (last)</th>
            <th scope="col">Packets (total)</th>
            <th scope="col">Drops (total)</th>
            <th scope="col">Seen at</th>
          </tr>
        </thead>
        <tbody>
          {flows.pairs.map((p) => (
            <tr key={`${p.sourceId}/${p.destinationId}`} data-src={p.source} data-dst={p.destination}>
              <td title={p.source}>{shortId(p.source)}</td>
              <td title={p.destination}>{shortId(p.destination)}</td>
              <td>
                {p.last.start.slice(11, 19)}–{p.last.end.slice(11, 19)}
              </td>
              <td>{p.last.packets}</td>
              <td>{bytes(p.last.bytes)}</td>
              <td class={Object.keys(p.last.drops).length ? "dropped" : ""}>{drops(p.last.drops)}</td>
              <td>{p.total.packets}</td>
              <td>{drops(p.total.drops)}</td>
              <td>{p.nodes.length} node{p.nodes.length === 1 ? "" : "s"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
