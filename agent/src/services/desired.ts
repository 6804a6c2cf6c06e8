/**
 * What the service maps should hold for a node's compiled services (NodeServicesRecord) and its
 * local view (passive ejections, latencies): every service VIP, and one weft_lb_services entry per
 * (VIP, port, protocol, local source identity) that has access (selection.ts decides each).
 * Pure, like datapath/desired.ts: the same functions run on the cached record at start (fail
 * static) and on live ones from NATS.
 */
import type { LbKey, LbService } from "@weft/bpf";
import { ServiceProtocolNumbers, serviceRef, type NodeService, type NodeServicesRecord } from "@weft/protocol";
import { NO_LOCAL_VIEW, selectionFor, type LocalView } from "./selection.js";

export interface DesiredServices {
  vips: Set<string>;
  /** `vip:port/proto@src` → entry. */
  entries: Map<string, readonly [LbKey, LbService]>;
}

export function lbKeyString(k: LbKey): string {
  return `${k.vip}:${k.port}/${k.proto}@${k.srcId}`;
}

/** The local view of one service (its ejections and latencies), by `namespace/name`. */
export type LocalViews = (service: string) => LocalView;

export function desiredServices(record: NodeServicesRecord | null, nodeId: string, local: LocalViews = () => NO_LOCAL_VIEW): DesiredServices {
  const out: DesiredServices = { vips: new Set(), entries: new Map() };
  if (!record) return out;
  const self = { site: record.self.site, cloud: record.self.cloud, nodeId };
  for (const svc of record.services) {
    out.vips.add(svc.vip);
    const view = local(serviceRef(svc));
    for (const src of Object.keys(svc.access)) {
      svc.ports.forEach((p, i) => {
        const key: LbKey = { vip: svc.vip, port: p.port, proto: ServiceProtocolNumbers[p.protocol], srcId: Number(src) };
        out.entries.set(lbKeyString(key), [key, selectionFor(svc, Number(src), i, self, view)]);
      });
    }
  }
  return out;
}

/** `namespace/name` of the service a VIP belongs to. */
export function serviceByVip(record: NodeServicesRecord | null): Map<string, NodeService> {
  return new Map((record?.services ?? []).map((s) => [s.vip, s]));
}
