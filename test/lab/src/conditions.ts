/**
 * Changes a running lab's network conditions, for the tests of NAT traversal and loss:
 *   - loss on a site's WAN link (its gateway drops a share of the packets it forwards, both ways:
 *     iptables `statistic --mode random`; this kernel has no netem);
 *   - the NAT kind of a masquerading site (port-keeping ↔ random port per destination);
 *   - a cloud host's public address (the 1:1 NAT on its gateway follows, as after a VM stop/start).
 * Each change flushes the gateway's conntrack table where old mappings would outlive it, as a
 * NAT reboot would. Delay is not injected (no netem, and no eBPF delay program yet).
 *
 * These are runtime changes: `labUp` does not know them (it would add the original rules back
 * beside them) and `labDown` removes them with the namespaces.
 */
import { LabError } from "./errors.js";
import { labExec } from "./exec.js";
import { resolveLabOptions, type LabOptions } from "./options.js";
import { oneToOneHostRules } from "./network.js";
import { labTopology, type Gateway, type Topology } from "./topology.js";

/** The filter chain holding the loss rules of a gateway. */
export const LOSS_CHAIN = "WEFT-LAB-LOSS";

function topology(opts: LabOptions): Topology {
  return labTopology(resolveLabOptions(opts));
}

function gatewayOf(t: Topology, site: string): Gateway {
  const g = t.gateways.find((x) => x.site === site);
  if (!g) throw new LabError(`no lab site ${site}; sites: ${t.sites.map((s) => s.name).join(", ")}`);
  return g;
}

async function inGateway(opts: LabOptions, g: Gateway, argv: string[], ok: number[] = [0]): Promise<string> {
  const res = await labExec(opts, g.name, argv);
  if (!ok.includes(res.exitCode ?? -1)) throw new LabError(`${g.name}: ${argv.join(" ")}: exit ${res.exitCode}: ${res.stderr.trim()}`);
  return res.stdout;
}

/** The iptables rules that drop `probability` of the packets a gateway forwards through its WAN link, each way (pure). */
export function lossRules(g: Pick<Gateway, "wanInterface">, probability: number): string[][] {
  if (!(probability >= 0 && probability < 1)) throw new LabError(`loss probability must be in [0, 1), got ${probability}`);
  if (probability === 0) return [];
  const p = probability.toFixed(4);
  return [
    ["-i", g.wanInterface, "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"],
    ["-o", g.wanInterface, "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"],
  ];
}

/** Drops `probability` (0 ≤ p < 1) of the packets crossing a site's WAN link, each direction on its own; 0 removes the loss. */
export async function labSetLoss(opts: LabOptions, site: string, probability: number): Promise<void> {
  const g = gatewayOf(topology(opts), site);
  const rules = lossRules(g, probability);
  const ipt = (...args: string[]) => ["iptables", "-w", "5", "-t", "filter", ...args];
  if ((await labExec(opts, g.name, ipt("-S", LOSS_CHAIN))).exitCode !== 0) await inGateway(opts, g, ipt("-N", LOSS_CHAIN));
  if ((await labExec(opts, g.name, ipt("-C", "FORWARD", "-j", LOSS_CHAIN))).exitCode !== 0) await inGateway(opts, g, ipt("-I", "FORWARD", "1", "-j", LOSS_CHAIN));
  await inGateway(opts, g, ipt("-F", LOSS_CHAIN));
  for (const r of rules) await inGateway(opts, g, ipt("-A", LOSS_CHAIN, ...r));
}

/**
 * Switches a masquerading site between a port-keeping NAT (`masquerade`) and one that picks a
 * random port for every new flow (`random`), then flushes the gateway's conntrack table so every
 * flow gets a mapping of the new kind.
 */
export async function labSetNat(opts: LabOptions, site: string, kind: "masquerade" | "random"): Promise<void> {
  const t = topology(opts);
  const g = gatewayOf(t, site);
  if (g.nat === "one-to-one") throw new LabError(`${site} has a 1:1 NAT; only masquerading sites can change kind`);
  const lan = t.sites.find((s) => s.name === site)!.privateCidr;
  const rule = (random: boolean) => ["-s", lan, "-o", g.wanInterface, "-j", "MASQUERADE", ...(random ? ["--random-fully"] : [])];
  const ipt = (...args: string[]) => ["iptables", "-w", "5", "-t", "nat", ...args];
  for (const random of [true, false]) {
    while ((await labExec(opts, g.name, ipt("-C", "POSTROUTING", ...rule(random)))).exitCode === 0) await inGateway(opts, g, ipt("-D", "POSTROUTING", ...rule(random)));
  }
  await inGateway(opts, g, ipt("-A", "POSTROUTING", ...rule(kind === "random")));
  await flushConntrack(opts, g);
}

/**
 * Gives a cloud host another public address on its gateway's 1:1 NAT (the address must be in the
 * site's public block, which inet routes to the gateway): the rules for the old address are
 * replaced, and the gateway's conntrack table flushed, so the old address is dead at once and
 * the host's flows leave from the new one.
 */
export async function labMovePublicAddress(opts: LabOptions, hostName: string, from: string, to: string): Promise<void> {
  const t = topology(opts);
  const host = t.hosts.find((h) => h.name === hostName);
  if (!host) throw new LabError(`no lab host ${hostName}`);
  const g = gatewayOf(t, host.site);
  if (g.nat !== "one-to-one" || !g.publicCidr) throw new LabError(`${hostName} is not behind a 1:1 NAT`);
  const lan = t.sites.find((s) => s.name === host.site)!.privateCidr;
  const ipt = (...args: string[]) => ["iptables", "-w", "5", "-t", "nat", ...args];
  for (const r of oneToOneHostRules(g, host, lan, from)) {
    while ((await labExec(opts, g.name, ipt("-C", r.chain, ...r.spec))).exitCode === 0) await inGateway(opts, g, ipt("-D", r.chain, ...r.spec));
  }
  for (const r of oneToOneHostRules(g, host, lan, to)) await inGateway(opts, g, ipt("-A", r.chain, ...r.spec));
  await flushConntrack(opts, g);
}

/** Forgets every connection the gateway tracks (its NAT mappings with them). */
export async function flushConntrack(opts: LabOptions, g: Pick<Gateway, "name">): Promise<void> {
  const res = await labExec(opts, g.name, ["conntrack", "-F"]);
  if (res.exitCode !== 0) throw new LabError(`${g.name}: conntrack -F: exit ${res.exitCode}: ${res.stderr.trim()} (is the Debian package conntrack installed?)`);
}
