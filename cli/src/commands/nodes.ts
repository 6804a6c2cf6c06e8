/** `weft nodes list | get | delete`: enrolled nodes through the controller's API. */
import type { NodeView } from "@weft/protocol";
import { age, printJson, printLines, printTable } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";

export function nodeRows(nodes: NodeView[], now = Date.now()): string[][] {
  return nodes.map((n) => {
    const handshakes = (n.peers ?? []).map((p) => p.lastHandshake).filter((t): t is number => t !== undefined);
    const recent = handshakes.filter((t) => now / 1000 - t < 180).length;
    const latest = handshakes.length ? Math.max(...handshakes) : undefined;
    return [n.name, n.site, n.overlayAddress, n.status, `${recent}/${n.peers?.length ?? 0}`, age(latest, now), n.nodeId];
  });
}

export const NODE_HEADERS = ["NAME", "SITE", "OVERLAY", "STATUS", "HANDSHAKES", "LAST HANDSHAKE", "ID"];

export async function listNodes(o: AdminOptions & { json?: boolean }): Promise<void> {
  const list = await (await adminClient(o)).listNodes();
  if (o.json) return printJson(list);
  printTable(NODE_HEADERS, nodeRows(list));
}

export async function getNode(node: string, o: AdminOptions & { json?: boolean }): Promise<void> {
  const view = await (await adminClient(o)).getNode(node);
  if (o.json) return printJson(view);
  printTable(NODE_HEADERS, nodeRows([view]));
  const d = view.policyDelivery;
  if (d) process.stdout.write(d.state === "ok" ? `policy: delivered (${d.mapEntries} of ${d.capacity} map entries)\n` : `policy: NOT delivered since ${d.since ?? "?"}: needs ${d.mapEntries} map entries, the map holds ${d.capacity}; the node keeps its last good policy\n`);
}

export async function deleteNode(node: string, o: AdminOptions & { json?: boolean }): Promise<void> {
  const view = await (await adminClient(o)).deleteNode(node);
  if (o.json) return printJson(view);
  printLines(`node ${view.name} (${view.nodeId}) deleted`);
}
