/**
 * The names this node's DNS answers (dns.ts), from its compiled services and the peer records
 * every agent has: each service this node's identities may call, every node and every workload.
 * Pure.
 */
import { serviceDnsName, type NodeServicesRecord, type PeerRecord } from "@weft/protocol";
import type { DnsNames } from "./dns.js";

export const DNS_TTL_SECONDS = 30;

export function dnsNames(record: NodeServicesRecord | null, peers: readonly PeerRecord[], fallbackZone: string): DnsNames {
  const zone = (record?.zone ?? fallbackZone).toLowerCase();
  const records = new Map<string, string[]>();
  const add = (name: string, address: string) => records.set(name, [...(records.get(name) ?? []), address]);
  for (const s of record?.services ?? []) add(serviceDnsName(s, zone), s.vip);
  for (const p of peers) {
    add(`${p.name}.node.${zone}`, p.overlayAddress);
    for (const w of p.workloads ?? []) add(`${w.name}.${p.name}.workload.${zone}`, w.address);
  }
  return { zone, records, ttl: DNS_TTL_SECONDS };
}

/** The resolv.conf of a workload: this node's DNS, search in its own namespace first. */
export function workloadResolvConf(o: { nameserver: string; namespace: string; zone: string; workload: string }): string {
  return [
    `# written by the weft agent for workload ${o.workload}: service, node and workload names through this node's DNS`,
    `nameserver ${o.nameserver}`,
    `search ${o.namespace}.svc.${o.zone} svc.${o.zone} ${o.zone}`,
    // `api.shop` (one dot) tries the search list first; those names are answered locally at once.
    "options ndots:3 timeout:2 attempts:2",
    "",
  ].join("\n");
}
