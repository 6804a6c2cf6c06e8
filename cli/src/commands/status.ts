/**
 * `weft status`: this host's agent — enrollment, NATS state, and WireGuard peers with each one's
 * path (direct, relay via …) and RTT. Asked of the running agent over its local API socket first
 * (it answers from memory, and this command then loads nothing but node:http); when no agent
 * answers there, read from the state directory's files.
 */
import { join } from "node:path";
import { LOCAL_API_SOCKET, callLocalApi, isStatusView, type StatusView } from "@weft/agent/status-view";
import { UsageError } from "../errors.js";
import { age, printJson, printLines, printTable } from "../output.js";

/** How long the running agent may take to answer before the files are read instead. */
const AGENT_TIMEOUT_MS = 2000;

export async function runStatus(o: { stateDir: string; json?: boolean }): Promise<void> {
  const out = (await fromAgent(o.stateDir)) ?? (await fromFiles(o.stateDir));
  if (o.json) return printJson(out);
  printLines(
    `node ${out.name} (${out.nodeId}) site ${out.site} overlay ${out.overlayAddress}\n` +
      `${out.removed ? "THIS NODE WAS REMOVED FROM THE OVERLAY\n" : ""}nats ${out.nats}${out.stale ? " (config may be stale)" : ""}, revision ${out.appliedRevision}, last sync ${out.lastSyncAt ? age(Date.parse(out.lastSyncAt) / 1000) + " ago" : "never"}, ${out.services} service${out.services === 1 ? "" : "s"} callable\n`,
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

/** The running agent's view (socket `agent.sock` in the state directory), or undefined when none answers it. */
async function fromAgent(stateDir: string): Promise<StatusView | undefined> {
  const view = await callLocalApi<unknown>(join(stateDir, LOCAL_API_SOCKET), "GET", "/v1/status/view", undefined, AGENT_TIMEOUT_MS).catch(() => undefined);
  return isStatusView(view) ? view : undefined;
}

async function fromFiles(stateDir: string): Promise<StatusView> {
  const { readFile } = await import("node:fs/promises");
  const { STATUS_FILE, loadState, readPeers, statusView } = await import("@weft/agent/local");
  const state = await loadState(stateDir);
  if (!state) throw new UsageError(`no agent state in ${stateDir}: this host is not enrolled (run \`weft agent --controller … --join-key …\`)`);
  const status = await readFile(join(stateDir, STATUS_FILE), "utf8")
    .then((t) => JSON.parse(t) as Parameters<typeof statusView>[1])
    .catch(() => undefined);
  const live = status?.interface ? await readPeers(status.interface).catch(() => []) : [];
  return statusView(state, status, live);
}
