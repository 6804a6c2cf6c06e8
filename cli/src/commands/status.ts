/** `weft status`: this host's agent — enrollment, NATS state, and WireGuard peers. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { STATUS_FILE, loadState, readPeers, type AgentStatus } from "@weft/agent/local";
import { UsageError } from "../errors.js";
import { age, printJson, printLines, printTable } from "../output.js";

export async function runStatus(o: { stateDir: string; json?: boolean }): Promise<void> {
  const state = await loadState(o.stateDir);
  if (!state) throw new UsageError(`no agent state in ${o.stateDir}: this host is not enrolled (run \`weft agent --controller … --join-key …\`)`);
  const status = await readFile(join(o.stateDir, STATUS_FILE), "utf8")
    .then((t) => JSON.parse(t) as AgentStatus)
    .catch(() => undefined);
  const peers = state.applied?.peers ?? [];
  const live = status?.interface ? await readPeers(status.interface).catch(() => []) : [];
  const liveByKey = new Map(live.map((p) => [p.publicKey, p]));
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
    services: status?.services ?? state.appliedServices?.record?.services.length ?? 0,
    servicesRevision: status?.servicesRevision ?? state.appliedServices?.revision,
    interface: status?.interface,
    peers: peers
      .filter((p) => p.nodeId !== state.nodeId)
      .map((p) => {
        const wg = liveByKey.get(p.wireguardPublicKey);
        return {
          name: p.name,
          site: p.site,
          overlayAddress: p.overlayAddress,
          endpoint: wg?.endpoint,
          latestHandshake: wg?.latestHandshake ? Math.floor(wg.latestHandshake.getTime() / 1000) : undefined,
          rxBytes: wg?.rxBytes,
          txBytes: wg?.txBytes,
        };
      }),
  };
  if (o.json) return printJson(out);
  printLines(
    `node ${out.name} (${out.nodeId}) site ${out.site} overlay ${out.overlayAddress}\n` +
      `${out.removed ? "THIS NODE WAS REMOVED FROM THE OVERLAY\n" : ""}nats ${out.nats}${out.stale ? " (config may be stale)" : ""}, revision ${out.appliedRevision}, last sync ${out.lastSyncAt ? age(Date.parse(out.lastSyncAt) / 1000) + " ago" : "never"}, ${out.services} service${out.services === 1 ? "" : "s"} callable\n`,
  );
  printTable(
    ["PEER", "SITE", "OVERLAY", "ENDPOINT", "LAST HANDSHAKE", "RX", "TX"],
    out.peers.map((p) => [p.name, p.site, p.overlayAddress, p.endpoint ?? "-", age(p.latestHandshake), String(p.rxBytes ?? "-"), String(p.txBytes ?? "-")]),
  );
}
