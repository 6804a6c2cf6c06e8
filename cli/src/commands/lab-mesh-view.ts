/**
 * The lab demo's live view of the mesh, which outlives the control plane (fail static, issue 18):
 * every refresh asks the controller for its node list with a short timeout; when that fails — a
 * frozen controller whose request times out, a dead one, a refused connection — the view says the
 * control plane is unreachable (since when, and why) and shows the mesh as the hosts see it: each
 * host's WireGuard handshakes and its agent's local status (NATS state, stale config, applied
 * revision, overlay address from its state file). When the controller answers again, the view says
 * so and shows its node list again. A refresh never throws: a failing host probe shows as `?`.
 */
import type { NodeView } from "@weft/protocol";
import { age, formatTable } from "../output.js";

/** What one agent wrote locally (status.json, state.json); all optional: a host may have nothing yet. */
export interface LocalAgentView {
  overlayAddress?: string | undefined;
  nats?: string | undefined;
  stale?: boolean | undefined;
  appliedRevision?: number | undefined;
}

export interface MeshSources {
  hosts: readonly { name: string; site: string }[];
  /** The controller's node list (with a short timeout: a frozen controller must not hold the view). */
  nodes(): Promise<NodeView[]>;
  /** Latest handshake (epoch seconds, 0 = never) per peer public key on a host's interface. */
  handshakes(host: string): Promise<Map<string, number>>;
  local(host: string): Promise<LocalAgentView>;
}

export interface MeshView {
  controller: "reachable" | "unreachable";
  /** Why the controller's node list could not be read. */
  error?: string;
  text: string;
}

const FRESH_HANDSHAKE_S = 180;

/** Longest a refresh waits for the controller's node list, whatever the client's own timeout. */
export const NODES_TIMEOUT_MS = 3000;

/** One look at the mesh: the controller's node list when it answers within `nodesTimeoutMs`, the hosts' own view always. */
export async function meshView(src: MeshSources, nowMs = Date.now(), nodesTimeoutMs = NODES_TIMEOUT_MS): Promise<MeshView> {
  let nodes: NodeView[] | undefined;
  let error: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${nodesTimeoutMs} ms`)), nodesTimeoutMs)));
    nodes = await Promise.race([src.nodes(), late]);
  } catch (err) {
    error = (err as Error).message || String(err);
  } finally {
    clearTimeout(timer);
  }
  const now = nowMs / 1000;
  const rows = await Promise.all(
    src.hosts.map(async (h) => {
      const [hs, local] = await Promise.all([src.handshakes(h.name).catch(() => undefined), src.local(h.name).catch((): LocalAgentView => ({}))]);
      const times = hs ? [...hs.values()].filter((t) => t > 0) : [];
      const peers = hs ? `${times.filter((t) => now - t < FRESH_HANDSHAKE_S).length}/${hs.size}` : "?";
      const last = hs ? age(times.length ? Math.max(...times) : undefined) : "?";
      const agent = local.nats === undefined ? "-" : `${local.nats}${local.stale ? ", stale config" : ""}${local.appliedRevision !== undefined ? ` (rev ${local.appliedRevision})` : ""}`;
      if (nodes) {
        const node = nodes.find((n) => n.name === h.name);
        // A host the controller no longer lists (its instance was terminated) keeps its stale tunnel state: not shown.
        if (!node) return [h.name, h.site, "-", "-", "-", "not a member", agent];
        return [h.name, h.site, node.overlayAddress, peers, last, node.status, agent];
      }
      return [h.name, h.site, local.overlayAddress ?? "-", peers, last, "unknown", agent];
    }),
  );
  const table = formatTable(["NODE", "SITE", "OVERLAY", "PEERS WITH HANDSHAKE", "LAST HANDSHAKE", "STATUS", "AGENT"], rows);
  if (nodes) return { controller: "reachable", text: table };
  return { controller: "unreachable", error: error ?? "no answer", text: `control plane unreachable (${error}); the mesh as the hosts see it:\n${table}` };
}

/**
 * Refreshes the view every `intervalMs` until `stopped` settles, writing each one; notes when the
 * control plane becomes unreachable and when it answers again. Never throws.
 */
export async function watchMesh(o: { sources: MeshSources; intervalMs: number; stopped: Promise<unknown>; write: (text: string) => void; now?: () => number }): Promise<void> {
  const now = o.now ?? Date.now;
  let stop = false;
  void o.stopped.then(() => (stop = true));
  let unreachableSince: number | undefined;
  while (!stop) {
    await Promise.race([new Promise((r) => setTimeout(r, o.intervalMs)), o.stopped]);
    if (stop) return;
    const at = now();
    let view: MeshView;
    try {
      view = await meshView(o.sources, at);
    } catch (err) {
      o.write(`\n${new Date(at).toISOString()}\nrefresh failed: ${(err as Error).message}; retrying in ${o.intervalMs / 1000} s\n`);
      continue;
    }
    let note = "";
    if (view.controller === "unreachable") {
      unreachableSince ??= at;
      note = `control plane unreachable for ${Math.round((at - unreachableSince) / 1000)} s; the data plane keeps its last config\n`;
    } else if (unreachableSince !== undefined) {
      note = `control plane reachable again after ${Math.round((at - unreachableSince) / 1000)} s\n`;
      unreachableSince = undefined;
    }
    o.write(`\n${new Date(at).toISOString()}\n${note}${view.text}\n`);
  }
}
