/** `weft status`: this host's agent — enrollment, NATS state, and WireGuard peers with each one's path (direct, relay via …) and RTT. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { STATUS_FILE, loadState, readPeers, type AgentStatus } from "@weft/agent/local";
import { UsageError } from "../errors.js";
import { age, printJson, printTable } from "../output.js";

export async function runStatus(o: { stateDir: string; json?: boolean }): Promise<void> {
  const state = await loadState(o.stateDir);
  if (!state) throw new UsageError(`no agent state in ${o.stateDir}: this host is not enrolled (run \`weft agent --controller … --join-key …\`)`);
  const status = await readFile(join(o.stateDir, STATUS_FILE), "utf8")
    .then((t) => JSON.parse(t) as AgentStatus)
    .catch(() => undefined);
  const peers = state.applied?.peers ?? [];
  const live = status?.interface ? await readPeers(status.interface).catch(() => []) : [];
  const liveByKey = new Map(live.map((p) => [p.publicKey, p]));
  const pathOf = new Map((status?.paths ?? []).map((p) => [p.nodeId, p]));
  const out = {
    nodeId: state.nodeId,
    name: state.name,
    site: state.site,
    overlayAddress: state.overlayAddress,
    controller: state.controllerUrl,
    nats: status?.nats ?? "unknown",
    stale: status?.stale ?? true,
    removed: status?.removed ?? false,
    appliedRevision: state.applied?.revision ?? 0,
    lastSyncAt: status?.lastSyncAt,
    interface: status?.interface,
    peers: peers
      .filter((p) => p.nodeId !== state.nodeId)
      .map((p) => {
        const wg = liveByKey.get(p.wireguardPublicKey);
        const path = pathOf.get(p.nodeId);
        return {
          name: p.name,
          site: p.site,
          overlayAddress: p.overlayAddress,
          path: path?.path,
          via: path?.via,
          rttMs: path?.rttMs,
          endpoint: wg?.endpoint,
          latestHandshake: wg?.latestHandshake ? Math.floor(wg.latestHandshake.getTime() / 1000) : undefined,
          rxBytes: wg?.rxBytes,
          txBytes: wg?.txBytes,
        };
      }),
  };
  if (o.json) return printJson(out);
  process.stdout.write(
    `node ${out.name} (${out.nodeId}) site ${out.site} overlay ${out.overlayAddress}\n` +
      `${out.removed ? "THIS NODE WAS REMOVED FROM THE OVERLAY\n" : ""}nats ${out.nats}${out.stale ? " (config may be stale)" : ""}, revision ${out.appliedRevision}, last sync ${out.lastSyncAt ? age(Date.parse(out.lastSyncAt) / 1000) + " ago" : "never"}\n\n`,
  );
  printTable(
    ["PEER", "SITE", "OVERLAY", "PATH", "RTT", "ENDPOINT", "LAST HANDSHAKE", "RX", "TX"],
    out.peers.map((p) => [
      p.name,
      p.site,
      p.overlayAddress,
      p.path === "relay" ? `relay via ${p.via ?? "?"}` : (p.path ?? "-"),
      p.rttMs === undefined ? "-" : `${p.rttMs.toFixed(2)} ms`,
      p.endpoint ?? "-",
      age(p.latestHandshake),
      String(p.rxBytes ?? "-"),
      String(p.txBytes ?? "-"),
    ]),
  );
}
