/** One node: identity, labels, endpoints, workloads, site routes, and each peer's tunnel as its heartbeats show it. */
import type { NodeView } from "@weft/protocol";
import { ageClass } from "../topology.js";
import { bytes } from "./format.js";

export function NodeDetail({ node, nodes, onClose }: { node: NodeView; nodes: NodeView[]; onClose: () => void }) {
  const byKey = new Map(nodes.map((n) => [n.wireguardPublicKey, n]));
  const now = Date.now() / 1000;
  return (
    <section aria-labelledby="node-title" class="detail" data-testid="node-detail">
      <div class="detail-head">
        <h2 id="node-title">Node {node.name}</h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      <dl class="facts">
        <dt>Status</dt>
        <dd class={`status ${node.status}`}>{node.status}{node.lastSeen ? ` (last heartbeat ${node.lastSeen})` : ""}</dd>
        <dt>Node id</dt>
        <dd>{node.nodeId}</dd>
        <dt>Site</dt>
        <dd>{node.site}</dd>
        <dt>Overlay address</dt>
        <dd>{node.overlayAddress}</dd>
        <dt>Identity</dt>
        <dd>{node.identity ? `${node.identity.spiffeId} (${node.identity.id})` : "none"}</dd>
        <dt>Endpoints</dt>
        <dd>
          private {node.endpoints.private ?? "none"}, public {node.endpoints.public ?? "none (behind NAT)"}
        </dd>
        <dt>Instance</dt>
        <dd>{node.instance ? `${node.instance.provider} ${node.instance.account} ${node.instance.id}` : "none"}</dd>
        <dt>Site routes</dt>
        <dd>{(node.siteRoutes ?? []).join(", ") || "none"}</dd>
      </dl>
      <h3>Labels</h3>
      <ul class="labels">
        {Object.entries(node.labels).map(([k, v]) => (
          <li key={k}>
            <code>
              {k}={v}
            </code>
          </li>
        ))}
      </ul>
      <h3>Workloads</h3>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Address</th>
            <th scope="col">Identity</th>
          </tr>
        </thead>
        <tbody>
          {(node.workloads ?? []).map((w) => (
            <tr key={w.name}>
              <td>{w.name}</td>
              <td>{w.address}</td>
              <td>{w.identity.spiffeId}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Peers</h3>
      <table data-testid="node-peers">
        <thead>
          <tr>
            <th scope="col">Peer</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Last handshake</th>
            <th scope="col">Received</th>
            <th scope="col">Sent</th>
            <th scope="col">RTT</th>
          </tr>
        </thead>
        <tbody>
          {(node.peers ?? []).map((p) => {
            const peer = byKey.get(p.publicKey);
            const age = p.lastHandshake === undefined ? undefined : Math.max(0, Math.round(now - p.lastHandshake));
            return (
              <tr key={p.publicKey}>
                <td>{peer?.name ?? p.publicKey.slice(0, 10)}</td>
                <td>{p.endpoint ?? "none"}</td>
                <td class={`age ${ageClass(age)}`}>{age === undefined ? "never" : `${age} s ago`}</td>
                <td>{p.rxBytes === undefined ? "n/a" : bytes(p.rxBytes)}</td>
                <td>{p.txBytes === undefined ? "n/a" : bytes(p.txBytes)}</td>
                <td title="not measured yet">n/a</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
