/** `weft flows`: packets, bytes and drops per identity pair enforced on this host, and service connections refused here (rate limit, no backend). */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { flowRows, readPinnedFlows, readPinnedRefused, refusedFlowRows } from "@weft/agent/flows";
import { STATUS_FILE, loadState, type AgentStatus } from "@weft/agent/local";
import { UsageError } from "../errors.js";
import { printJson, printTable } from "../output.js";

export async function runFlows(o: { stateDir: string; pinDir?: string; json?: boolean }): Promise<void> {
  const state = await loadState(o.stateDir);
  if (!state) throw new UsageError(`no agent state in ${o.stateDir}: this host is not enrolled (run \`weft agent --controller … --join-key …\`)`);
  const status = await readFile(join(o.stateDir, STATUS_FILE), "utf8")
    .then((t) => JSON.parse(t) as AgentStatus)
    .catch(() => undefined);
  const pinDir = o.pinDir ?? status?.pinDir;
  if (!pinDir) throw new UsageError(`the agent in ${o.stateDir} runs without an eBPF datapath (or has not started yet); pass --pin-dir if its maps are pinned elsewhere`);
  const peers = state.applied?.peers ?? [];
  const rows = [...flowRows(readPinnedFlows(pinDir), peers), ...refusedFlowRows(readPinnedRefused(pinDir), state.appliedServices?.record, peers)];
  if (o.json) return printJson({ nodeId: state.nodeId, pinDir, flows: rows });
  printTable(
    ["SOURCE", "DESTINATION", "PACKETS", "BYTES", "DROPS"],
    rows.map((r) => [r.source, r.destination, String(r.packets), String(r.bytes), Object.entries(r.drops).map(([k, v]) => `${k}=${v}`).join(" ") || "-"]),
  );
}
