/** The cloud inventory: each account's last sync, instances with the node bound to each, site routes (advertised and withheld), overlaps, and removals held back. */
import type { InventoryView, NodeView } from "@weft/protocol";

export function Inventory({ inventory, nodes }: { inventory: InventoryView | undefined; nodes: NodeView[] }) {
  if (!inventory) return <p>Loading the inventory…</p>;
  const names = new Map(nodes.map((n) => [n.nodeId, n.name]));
  const heldBack = inventory.statuses.flatMap((s) => s.heldBack.map((h) => ({ ...h, account: `${s.provider}/${s.account}`, why: s.heldBackReason })));
  return (
    <section aria-labelledby="inventory-title">
      <h2 id="inventory-title">Inventory</h2>
      <h3>Accounts</h3>
      <table>
        <thead>
          <tr>
            <th scope="col">Account</th>
            <th scope="col">Result</th>
            <th scope="col">Synced</th>
            <th scope="col">Instances</th>
            <th scope="col">Bound</th>
            <th scope="col">Issues</th>
          </tr>
        </thead>
        <tbody>
          {inventory.statuses.map((s) => (
            <tr key={`${s.provider}/${s.account}`}>
              <td>
                {s.provider}/{s.account}
              </td>
              <td class={`result ${s.result}`}>{s.result}</td>
              <td>{s.syncedAt}</td>
              <td>{s.counts.instances}</td>
              <td>{s.counts.bound}</td>
              <td>{[s.error?.message, ...s.issues.map((i) => i.message)].filter(Boolean).join("; ") || "none"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Instances</h3>
      <table data-testid="instances">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Cloud</th>
            <th scope="col">Region</th>
            <th scope="col">State</th>
            <th scope="col">Private</th>
            <th scope="col">Public</th>
            <th scope="col">Bound node</th>
          </tr>
        </thead>
        <tbody>
          {inventory.instances.map((i) => (
            <tr key={`${i.provider}/${i.account}/${i.id}`} data-instance={i.name}>
              <td>{i.name}</td>
              <td>
                {i.provider}/{i.account}
              </td>
              <td>{i.region}</td>
              <td>{i.state}</td>
              <td>{i.privateIps.join(", ")}</td>
              <td>{i.publicIps.join(", ") || "none"}</td>
              <td>{i.boundNode ? (names.get(i.boundNode) ?? i.boundNode) : "none"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Site routes</h3>
      <table>
        <thead>
          <tr>
            <th scope="col">Site</th>
            <th scope="col">Networks</th>
            <th scope="col">Gateway</th>
            <th scope="col">Advertised</th>
            <th scope="col">Withheld</th>
          </tr>
        </thead>
        <tbody>
          {inventory.siteRoutes.map((r) => (
            <tr key={r.site}>
              <td>{r.site}</td>
              <td>{r.cidrs.join(", ")}</td>
              <td>{r.gateway?.name ?? "none"}</td>
              <td>{r.advertised.join(", ") || "none"}</td>
              <td>{r.withheld.map((w) => `${w.cidr}: ${w.reason}`).join("; ") || "none"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Overlapping networks</h3>
      {inventory.overlaps.length === 0 ? (
        <p>None.</p>
      ) : (
        <ul>
          {inventory.overlaps.map((o, i) => (
            <li key={i}>
              {o.a.site} {o.a.cidr} overlaps {o.b.site} {o.b.cidr}
            </li>
          ))}
        </ul>
      )}
      <h3>Removals held back</h3>
      {heldBack.length === 0 ? (
        <p>None.</p>
      ) : (
        <ul>
          {heldBack.map((h) => (
            <li key={h.nodeId}>
              {h.name ?? h.nodeId} ({h.instance}, {h.reason}) in {h.account}: {h.why ?? h.evidence}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
