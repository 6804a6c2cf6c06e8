/**
 * Plumbing for workloads hosted on this node, the way a CNI plugin does it: a veth pair whose
 * workload end is `eth0` inside the workload's network namespace, holding the workload's /32,
 * with a default route via a link-local gateway (169.254.1.1) that the host end answers for. The
 * host routes the workload's /32 to the veth with the node's overlay address as source, so the
 * host's own traffic to its workloads carries the node's identity.
 *
 * Every step is idempotent (`replace`), so running it again repairs what was changed by hand. The
 * steps in each namespace run as one `ip -batch`: a new workload is seven commands, not thirteen.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { ipBatch } from "../exec/ip-batch.js";
import type { CommandRunner } from "../exec/runner.js";
import { WorkloadError } from "../errors.js";
import { linkExists } from "../net/links.js";

/** The gateway address every workload routes through (on the host end of its veth). */
export const WORKLOAD_GATEWAY = "169.254.1.1";

export interface WorkloadLink {
  /** Workload name (unique on the node). */
  name: string;
  /** Network namespace name in /run/netns. */
  netns: string;
  /** The workload's address (a /32 from the node's workload prefix). */
  address: string;
}

/** Host end of a workload's veth: `wl` + 10 hex digits of the name's hash (15-character limit). */
export function hostInterfaceFor(name: string): string {
  return `wl${createHash("sha256").update(name).digest("hex").slice(0, 10)}`;
}

export interface PlumbOptions {
  /** Source address of the host's route to the workload (the node's overlay address). */
  overlayAddress: string;
  mtu: number;
}

/** Creates or repairs the veth, addresses and routes of one workload. Returns the host interface name. */
export async function plumbWorkload(run: CommandRunner, w: WorkloadLink, opts: PlumbOptions): Promise<string> {
  if (!existsSync(`/run/netns/${w.netns}`)) {
    throw new WorkloadError(`workload ${w.name}: network namespace ${w.netns} does not exist; create it (\`ip netns add ${w.netns}\`) or fix the workload's netns`);
  }
  const host = hostInterfaceFor(w.name);
  const inNs = (...argv: string[]) => run.run(["ip", "-n", w.netns, ...argv]);
  try {
    if (!(await linkExists(run, host))) {
      // A leftover eth0 in the namespace (its host end was deleted) would block the new pair.
      await inNs("link", "del", "eth0").catch(() => undefined);
      await run.run(["ip", "link", "add", host, "mtu", String(opts.mtu), "type", "veth", "peer", "name", "eth0", "netns", w.netns]);
    }
    const mtu = String(opts.mtu);
    await ipBatch(run, [], [
      ["link", "set", host, "mtu", mtu, "up"],
      ["addr", "replace", `${WORKLOAD_GATEWAY}/32`, "dev", host, "scope", "link"],
      ["route", "replace", `${w.address}/32`, "dev", host, "src", opts.overlayAddress],
    ]);
    await ipBatch(run, ["-n", w.netns], [
      ["link", "set", "lo", "up"],
      ["link", "set", "eth0", "mtu", mtu, "up"],
      ["addr", "replace", `${w.address}/32`, "dev", "eth0"],
      ["route", "replace", `${WORKLOAD_GATEWAY}/32`, "dev", "eth0", "scope", "link"],
      ["route", "replace", "default", "via", WORKLOAD_GATEWAY, "dev", "eth0", "onlink"],
    ]);
    // A workload whose address changed (the node enrolled again) keeps only the new one.
    for (const stale of await ipv4Addresses(run, ["-n", w.netns], "eth0")) if (stale !== w.address) await inNs("addr", "del", `${stale}/32`, "dev", "eth0");
    for (const route of await hostRoutes(run, host)) if (route !== w.address && route !== WORKLOAD_GATEWAY) await run.run(["ip", "route", "del", `${route}/32`, "dev", host]);
  } catch (err) {
    throw new WorkloadError(`workload ${w.name}: cannot plumb ${w.address} into ${w.netns}: ${(err as Error).message}`, { cause: err, retryable: true });
  }
  return host;
}

/** Removes a workload's veth (both ends go with it); false when it was not there. */
export async function unplumbWorkload(run: CommandRunner, name: string): Promise<boolean> {
  const host = hostInterfaceFor(name);
  if (!(await linkExists(run, host))) return false;
  await run.run(["ip", "link", "del", host]);
  return true;
}

/** Turns on IPv4 forwarding in this network namespace: workloads' traffic is routed by the host. */
export async function enableForwarding(run: CommandRunner): Promise<void> {
  await run.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
}

async function ipv4Addresses(run: CommandRunner, ns: string[], dev: string): Promise<string[]> {
  const { stdout } = await run.run(["ip", ...ns, "-4", "-json", "addr", "show", "dev", dev]);
  const parsed = JSON.parse(stdout) as { addr_info?: { local?: string; scope?: string }[] }[];
  return (parsed[0]?.addr_info ?? []).filter((a) => a.scope === "global" && typeof a.local === "string").map((a) => a.local as string);
}

/** /32 destinations the host routes to a workload's veth. */
async function hostRoutes(run: CommandRunner, dev: string): Promise<string[]> {
  const { stdout } = await run.run(["ip", "-4", "-json", "route", "show", "dev", dev]);
  return (JSON.parse(stdout) as { dst?: string }[]).map((r) => r.dst ?? "").filter((d) => /^\d+\.\d+\.\d+\.\d+$/.test(d));
}
