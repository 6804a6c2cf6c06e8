/**
 * Workload attestation (pure): which of this host's identities a Workload API caller gets, from
 * what the kernel says about it (peercred.ts) — never from anything the caller sends.
 *
 * - A process in a workload's network namespace is that workload, whatever its uid: the namespace
 *   is the workload (it is what the datapath gives the workload's identity to).
 * - A process in the host's own network namespace gets the node's identity only when its uid is in
 *   `hostUids` (default root only). Every host process already sends as the node in the datapath,
 *   but an SVID is a bearer credential usable elsewhere, so it goes only to uids trusted with it.
 * - Anything else — another namespace (another host's, an unrelated container's), a namespace two
 *   workloads claim, a peer that exited before it could be read — gets nothing.
 */
import { sameNamespace, type NamespaceId, type PeerCredentials } from "./peercred.js";

export type Caller = { kind: "workload"; workload: string } | { kind: "host" } | { kind: "none"; reason: string };

export interface AttestContext {
  /** This agent's own network namespace (the host's). */
  hostNetns: NamespaceId;
  /** Uids of host processes that get the node's identity. */
  hostUids: readonly number[];
  /** This host's workloads and their network namespaces (undefined: the namespace is not there now). */
  workloads: readonly { name: string; netns: NamespaceId | undefined }[];
}

export function attest(peer: Pick<PeerCredentials, "uid" | "netns">, ctx: AttestContext): Caller {
  if (peer.netns === undefined) return { kind: "none", reason: "the caller's network namespace could not be read (it exited?)" };
  const matches = ctx.workloads.filter((w) => sameNamespace(w.netns, peer.netns));
  if (matches.length > 1) return { kind: "none", reason: `workloads ${matches.map((w) => w.name).join(", ")} share the caller's network namespace; none of them is attested` };
  const only = matches[0];
  if (only) return { kind: "workload", workload: only.name };
  if (sameNamespace(ctx.hostNetns, peer.netns)) {
    if (ctx.hostUids.includes(peer.uid)) return { kind: "host" };
    return { kind: "none", reason: "a host process whose uid is not in spiffe.hostUids gets no identity" };
  }
  return { kind: "none", reason: "the caller is in neither this host's network namespace nor one of its workloads'" };
}

/** A stable key per caller, for sharing one served identity between its connections. */
export function callerKey(c: Caller): string {
  return c.kind === "workload" ? `workload:${c.workload}` : c.kind === "host" ? "host" : `none:${c.reason}`;
}
