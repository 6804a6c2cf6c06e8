/**
 * The lab's topology as plain data: sites, gateways, hosts, the internet router and the
 * controller, with every name and address. Pure: no I/O, so it is unit-tested without root and
 * shared by up, down, status and exec.
 *
 * Address plan (k = site index):
 *   transit  198.19.k.0/24   inet .1, gateway WAN .2   (k = 0 is the controller: ctl .2)
 *   public   198.18.k.0/24   cloud host i ↔ 198.18.k.(10+i) by 1:1 NAT on its gateway
 *   private  aws 10.10.0.0/16, azure 10.20.0.0/16, gcp 10.30.0.0/16 (gateway .0.1, hosts .0.1x),
 *            onprem 192.168.50.0/24 (gateway .1, host .11) behind MASQUERADE, no public address
 *
 * A suite may ask for more (LabLayout; the default is the seven hosts above, which the other
 * suites assume):
 *   natSites  branch 192.168.60.0/24 (k = 5, MASQUERADE like onprem) and cgnat 192.168.70.0/24
 *             (k = 6, MASQUERADE with a random source port per destination, as a carrier-grade
 *             NAT does), one host each; aws-2 is tagged a relay
 *   overlap   azure uses aws's 10.10.0.0/16 as well, and both sites have a machine (no agent) at
 *             10.10.0.5; aws-1 and azure-1 are their sites' gateways
 *   mtu       a smaller MTU for every link of a site (its LAN, its hosts and its WAN link)
 *   controllers: 3
 *             three controller hosts `ctl-1..3` at 198.19.0.11–13/24 instead of `ctl` at .2, on a
 *             bridge `br-ctl` in inet (inet .1 on it), for a highly available control plane
 */
import { resolveLabOptions, type LabLayout } from "./options.js";

export type SiteName = "aws" | "azure" | "gcp" | "onprem" | "branch" | "cgnat";

/**
 * How a site's gateway translates addresses: 1:1 (a public address per host), masquerade (one
 * shared address, the source port kept where it can be: an endpoint-independent mapping), or
 * random (one shared address, a random source port for every new flow: endpoint-dependent).
 */
export type NatKind = "one-to-one" | "masquerade" | "random";

export interface Site {
  name: SiteName;
  kind: "cloud" | "onprem";
  nat: NatKind;
  /** Site number k: transit 198.19.k.0/24, public 198.18.k.0/24. */
  index: number;
  /** The site's private network, e.g. `10.10.0.0/16`. */
  privateCidr: string;
  /** The block its hosts' public addresses come from; undefined for onprem. */
  publicCidr: string | undefined;
  /** MTU of every link of the site (LAN bridge, host veths, WAN link). */
  mtu: number;
  /** Machines on the site's LAN without an agent (extra addresses of the gateway's bridge), e.g. `10.10.0.5`. */
  machines: string[];
}

export interface Gateway {
  /** Short name, e.g. `gw-aws`. */
  name: string;
  site: SiteName;
  netns: string;
  nat: NatKind;
  /** Bridge holding the site's LAN, and the gateway's address on it (`10.10.0.1`). */
  lanInterface: string;
  lanAddress: string;
  lanPrefixLength: number;
  /** WAN veth to inet and its address (`198.19.1.2`); for onprem, the masquerade address. */
  wanInterface: string;
  wanAddress: string;
  /** Transit network to inet (`198.19.1.0/24`), inet's address on it and inet's interface name. */
  transitCidr: string;
  inetAddress: string;
  inetInterface: string;
  /** Public block routed to this gateway by inet; undefined for onprem. */
  publicCidr: string | undefined;
}

/**
 * A workload hanging off a lab host: an empty network namespace the host's agent plumbs a veth
 * into, with its own identity `spiffe://<trust domain>/ns/<namespace>/sa/<serviceAccount>`.
 */
export interface LabWorkload {
  /** Workload name on its host, e.g. `web`. */
  name: string;
  /** Lab node name, e.g. `aws-1-web` (what labExec takes). */
  node: string;
  netns: string;
  namespace: string;
  serviceAccount: string;
}

export interface Host {
  /** Short name, e.g. `aws-1`; what labExec and labStatus use. */
  name: string;
  site: SiteName;
  netns: string;
  /** The host's only interface (a veth into its gateway's bridge). */
  interface: string;
  privateAddress: string;
  prefixLength: number;
  /** The 1:1 NAT address; undefined for onprem (masqueraded, unreachable from outside). */
  publicAddress: string | undefined;
  /** Default router: the gateway's LAN address. */
  gateway: string;
  /** Name of the gateway's bridge port facing this host. */
  gatewayPort: string;
  workloads: LabWorkload[];
  /**
   * What the host's cloud instance is tagged as: `gateway` (weft:gateway, advertises its site's
   * networks: gcp-1; aws-1 and azure-1 with `overlap`), `relay` (weft:relay: aws-2 with `natSites`).
   */
  roles: ("gateway" | "relay")[];
}

export interface Controller {
  /** `ctl`, or `ctl-1` … `ctl-3` with `controllers: 3`. */
  name: string;
  netns: string;
  interface: string;
  /** Public address the controller listens on, reachable from every host. */
  address: string;
  prefixLength: number;
  gateway: string;
  /** inet's end of the controller's veth (enslaved to `controllerBridge` when there are several). */
  inetInterface: string;
}

export interface Inet {
  name: "inet";
  netns: string;
  /** With several controller hosts: the bridge in inet joining them, holding inet's address on their network. */
  controllerBridge: string | undefined;
}

export interface Topology {
  prefix: string;
  inet: Inet;
  /** The first controller host (`ctl`, or `ctl-1`): the one agents enroll with. */
  controller: Controller;
  /** Every controller host: `[ctl]`, or `ctl-1..3` with `controllers: 3`. */
  controllers: Controller[];
  sites: Site[];
  gateways: Gateway[];
  hosts: Host[];
}

interface SitePlan {
  name: SiteName;
  index: number;
  kind: "cloud" | "onprem";
  nat: NatKind;
  /** First three octets of the LAN, the prefix length, and how many hosts. */
  lanBase: string;
  lanPrefixLength: number;
  lanNetwork: string;
  hosts: number;
}

const SITES: readonly SitePlan[] = [
  { name: "aws", index: 1, kind: "cloud", nat: "one-to-one", lanBase: "10.10.0", lanNetwork: "10.10.0.0", lanPrefixLength: 16, hosts: 2 },
  { name: "azure", index: 2, kind: "cloud", nat: "one-to-one", lanBase: "10.20.0", lanNetwork: "10.20.0.0", lanPrefixLength: 16, hosts: 2 },
  { name: "gcp", index: 3, kind: "cloud", nat: "one-to-one", lanBase: "10.30.0", lanNetwork: "10.30.0.0", lanPrefixLength: 16, hosts: 2 },
  { name: "onprem", index: 4, kind: "onprem", nat: "masquerade", lanBase: "192.168.50", lanNetwork: "192.168.50.0", lanPrefixLength: 24, hosts: 1 },
];

/** The sites `natSites` adds: a second masquerading site and one behind a port-randomizing NAT. */
const NAT_SITES: readonly SitePlan[] = [
  { name: "branch", index: 5, kind: "onprem", nat: "masquerade", lanBase: "192.168.60", lanNetwork: "192.168.60.0", lanPrefixLength: 24, hosts: 1 },
  { name: "cgnat", index: 6, kind: "onprem", nat: "random", lanBase: "192.168.70", lanNetwork: "192.168.70.0", lanPrefixLength: 24, hosts: 1 },
];

/** With `overlap`, azure reuses aws's network, and both have a machine at this address. */
const OVERLAP_MACHINE = "10.10.0.5";

/** The site plans of a layout, in site order. */
function sitePlans(layout: LabLayout): SitePlan[] {
  const base = SITES.map((s) => (layout.overlap && s.name === "azure" ? { ...s, lanBase: "10.10.0", lanNetwork: "10.10.0.0" } : s));
  return [...base, ...(layout.natSites ? NAT_SITES : [])];
}

/**
 * One workload per host, all in namespace `shop`: the same service accounts in several clouds,
 * so policy between identities is exercised across sites and inside one.
 */
export const LAB_WORKLOAD_NAMESPACE = "shop";
const WORKLOADS: Readonly<Record<string, string>> = {
  "aws-1": "web",
  "aws-2": "api",
  "azure-1": "db",
  "azure-2": "api",
  "gcp-1": "web",
  "gcp-2": "db",
  "onprem-1": "ledger",
  "branch-1": "web",
  "cgnat-1": "api",
};

/** Host i of a site gets `.1x` on the LAN and, on a cloud, `198.18.k.1x` publicly. */
const HOST_OFFSET = 10;

/** Controller host i of several gets 198.19.0.(10+i). */
const CONTROLLER_HOST_OFFSET = 10;

/** MTU of every link unless the layout gives a site another. */
export const LAB_DEFAULT_MTU = 1500;

/**
 * Describes the lab for a prefix (default `weft`). Pure and deterministic.
 * Throws LabOptionsError for an invalid prefix.
 */
export function labTopology(opts: { prefix?: string; layout?: LabLayout } = {}): Topology {
  const { prefix, layout } = resolveLabOptions({ prefix: opts.prefix, layout: opts.layout });
  const ns = (name: string): string => `${prefix}-${name}`;

  const sites: Site[] = [];
  const gateways: Gateway[] = [];
  const hosts: Host[] = [];
  for (const s of sitePlans(layout)) {
    const cloud = s.kind === "cloud";
    const publicCidr = cloud ? `198.18.${s.index}.0/24` : undefined;
    sites.push({
      name: s.name,
      kind: s.kind,
      nat: s.nat,
      index: s.index,
      privateCidr: `${s.lanNetwork}/${s.lanPrefixLength}`,
      publicCidr,
      mtu: layout.mtu?.[s.name] ?? LAB_DEFAULT_MTU,
      machines: layout.overlap && (s.name === "aws" || s.name === "azure") ? [OVERLAP_MACHINE] : [],
    });
    const gateway: Gateway = {
      name: `gw-${s.name}`,
      site: s.name,
      netns: ns(`gw-${s.name}`),
      nat: s.nat,
      lanInterface: "br0",
      lanAddress: `${s.lanBase}.1`,
      lanPrefixLength: s.lanPrefixLength,
      wanInterface: "wan0",
      wanAddress: `198.19.${s.index}.2`,
      transitCidr: `198.19.${s.index}.0/24`,
      inetAddress: `198.19.${s.index}.1`,
      inetInterface: `to-${s.name}`,
      publicCidr,
    };
    gateways.push(gateway);
    for (let i = 1; i <= s.hosts; i++) {
      const name = `${s.name}-${i}`;
      hosts.push({
        name,
        site: s.name,
        netns: ns(name),
        interface: "eth0",
        privateAddress: `${s.lanBase}.${HOST_OFFSET + i}`,
        prefixLength: s.lanPrefixLength,
        publicAddress: cloud ? `198.18.${s.index}.${HOST_OFFSET + i}` : undefined,
        gateway: gateway.lanAddress,
        gatewayPort: `lan-${name}`,
        workloads: [WORKLOADS[name]].flatMap((w) =>
          w === undefined ? [] : [{ name: w, node: `${name}-${w}`, netns: ns(`${name}-${w}`), namespace: LAB_WORKLOAD_NAMESPACE, serviceAccount: w }],
        ),
        roles: [
          ...(name === "gcp-1" || (layout.overlap && (name === "aws-1" || name === "azure-1")) ? (["gateway"] as const) : []),
          ...(layout.natSites && name === "aws-2" ? (["relay"] as const) : []),
        ],
      });
    }
  }

  const controllers: Controller[] =
    layout.controllers === 1
      ? [{ name: "ctl", netns: ns("ctl"), interface: "eth0", address: "198.19.0.2", prefixLength: 24, gateway: "198.19.0.1", inetInterface: "to-ctl" }]
      : Array.from({ length: layout.controllers }, (_, i) => ({
          name: `ctl-${i + 1}`,
          netns: ns(`ctl-${i + 1}`),
          interface: "eth0",
          address: `198.19.0.${CONTROLLER_HOST_OFFSET + i + 1}`,
          prefixLength: 24,
          gateway: "198.19.0.1",
          inetInterface: `to-ctl-${i + 1}`,
        }));
  return {
    prefix,
    inet: { name: "inet", netns: ns("inet"), controllerBridge: controllers.length > 1 ? "br-ctl" : undefined },
    controller: controllers[0]!,
    controllers,
    sites,
    gateways,
    hosts,
  };
}

/** Every namespace of the topology, in creation order (inet first, hosts, then workloads). */
export function topologyNamespaces(t: Topology): string[] {
  return [t.inet.netns, ...t.controllers.map((c) => c.netns), ...t.gateways.map((g) => g.netns), ...t.hosts.map((h) => h.netns), ...labWorkloads(t).map((w) => w.netns)];
}

export function labWorkloads(t: Topology): (LabWorkload & { host: Host })[] {
  return t.hosts.flatMap((host) => host.workloads.map((w) => ({ ...w, host })));
}
