/**
 * Refused service connections as `weft flows` shows them: the pinned drops map (weft_lb_drops_v2) read
 * directly (so it works while the agent is stopped), one row per (source identity, service) with
 * its drops by reason (rateLimited, noBackend), the service named from the agent's cached record.
 */
import { join } from "node:path";
import { BpfMap, LbMapName, TypedMap, lbDropsValueCodec, lbRateKeyCodec } from "@weft/bpf";
import { serviceRef, type NodeServicesRecord, type PeerRecord } from "@weft/protocol";
import { DatapathError } from "../errors.js";
import type { FlowRow } from "../datapath/flows.js";
import { identityNames, nameOf } from "../datapath/names.js";
import { refusedCounts, type RefusedCount } from "./datapath.js";

/** Reads the refused-connection counters pinned under `pinDir` (root only); empty when the map is not pinned (no services yet). */
export function readPinnedRefused(pinDir: string): RefusedCount[] {
  const path = join(pinDir, "maps", LbMapName.drops);
  let raw: BpfMap;
  try {
    raw = BpfMap.fromPin(path);
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return [];
    throw new DatapathError(`cannot open the service drop counters pinned at ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return refusedCounts(new TypedMap(raw, lbRateKeyCodec, lbDropsValueCodec));
  } finally {
    raw.close();
  }
}

/** One flows row per (source, service) with refusals: destination `service <ns>/<name> (<vip>)`. */
export function refusedFlowRows(refused: readonly RefusedCount[], record: NodeServicesRecord | null | undefined, peers: readonly PeerRecord[]): FlowRow[] {
  const names = identityNames(peers);
  const byVip = new Map((record?.services ?? []).map((s) => [s.vip, serviceRef(s)]));
  return refused
    .filter((r) => r.rateLimited + r.noBackend > 0)
    .map((r) => ({
      source: nameOf(names, r.srcId),
      destination: `service ${byVip.get(r.vip) ?? "?"} (${r.vip})`,
      sourceId: r.srcId,
      destinationId: 0,
      service: byVip.get(r.vip) ?? r.vip,
      packets: 0,
      bytes: 0,
      drops: { ...(r.rateLimited > 0 ? { rateLimited: r.rateLimited } : {}), ...(r.noBackend > 0 ? { noBackend: r.noBackend } : {}) },
    }));
}
