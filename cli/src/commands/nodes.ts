/**
 * `weft nodes list | get | delete`: enrolled nodes through the controller's API. `list` shows each
 * node's paths in one column (how many peers it reaches directly, through a relay, not at all);
 * `--paths` (and `get`) print one line per node and peer with the path and the RTT the node measured.
 */
import type { NodeView } from "@weft/protocol";
import { age, printJson, printLines, printTable } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";

export function nodeRows(nodes: NodeView[], now = Date.now()): string[][] {
  return nodes.map((n) => {
    const handshakes = (n.peers ?? []).map((p) => p.lastHandshake).filter((t): t is number => t !== undefined);
    const recent = handshakes.filter((t) => now / 1000 - t < 180).length;
    const latest = handshakes.length ? Math.max(...handshakes) : undefined;
    return [n.name, n.site, n.overlayAddress, n.status, `${recent}/${n.peers?.length ?? 0}`, age(latest, now), pathSummary(n), n.nodeId];
  });
}

export const NODE_HEADERS = ["NAME", "SITE", "OVERLAY", "STATUS", "HANDSHAKES", "LAST HANDSHAKE", "PATHS", "ID"];

/** `9 direct, 2 relay` (peers without a path are counted as `none`); `-` before any report. */
export function pathSummary(n: NodeView): string {
  const counts = new Map<string, number>();
  for (const p of n.peers ?? []) if (p.path) counts.set(p.path, (counts.get(p.path) ?? 0) + 1);
  const parts = (["direct", "relay", "none"] as const).filter((k) => counts.has(k)).map((k) => `${counts.get(k)} ${k}`);
  return parts.join(", ") || "-";
}

/** One row per node and peer: the path the node uses (`direct`, `relay via <relay>`, `none`) and its RTT. */
export function pathRows(nodes: readonly NodeView[]): string[][] {
  const byKey = new Map(nodes.map((n) => [n.wireguardPublicKey, n]));
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));
  return nodes.flatMap((n) =>
    (n.peers ?? [])
      .map((p) => {
        const peer = byKey.get(p.publicKey);
        const path = p.path === "relay" ? `relay via ${p.via ? (byId.get(p.via)?.name ?? p.via) : "?"}` : (p.path ?? "-");
        return [n.name, peer?.name ?? `${p.publicKey.slice(0, 8)}…`, path, p.endpoint ?? "-", p.rttMs === undefined ? "-" : `${p.rttMs.toFixed(2)} ms`];
      })
      .sort((a, b) => a[1]!.localeCompare(b[1]!)),
  );
}

export const PATH_HEADERS = ["NODE", "PEER", "PATH", "ENDPOINT", "RTT"];

export async function listNodes(o: AdminOptions & { json?: boolean; paths?: boolean }): Promise<void> {
  const list = await (await adminClient(o)).listNodes();
  if (o.json) return printJson(list);
  if (o.paths) return printTable(PATH_HEADERS, pathRows(list));
  printTable(NODE_HEADERS, nodeRows(list));
}

export async function getNode(node: string, o: AdminOptions & { json?: boolean }): Promise<void> {
  const client = await adminClient(o);
  const view = await client.getNode(node);
  if (o.json) return printJson(view);
  printTable(NODE_HEADERS, nodeRows([view]));
  const d = view.policyDelivery;
  if (d) process.stdout.write(d.state === "ok" ? `policy: delivered (${d.mapEntries} of ${d.capacity} map entries)\n` : `policy: NOT delivered since ${d.since ?? "?"}: needs ${d.mapEntries} map entries, the map holds ${d.capacity}; the node keeps its last good policy\n`);
  // Peer names come from the other nodes' records.
  const all = await client.listNodes().catch(() => [view]);
  const rows = pathRows([view, ...all.filter((n) => n.nodeId !== view.nodeId)]).filter((r) => r[0] === view.name);
  if (rows.length > 0) {
    process.stdout.write("\n");
    printTable(PATH_HEADERS, rows);
  }
}

export async function deleteNode(node: string, o: AdminOptions & { json?: boolean }): Promise<void> {
  const view = await (await adminClient(o)).deleteNode(node);
  if (o.json) return printJson(view);
  printLines(`node ${view.name} (${view.nodeId}) deleted`);
}
