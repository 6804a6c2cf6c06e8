/**
 * Renders a Topology into the desired state of each namespace: links (veth pairs, bridges),
 * addresses, routes, sysctls and firewall/NAT rules. Pure: the planner diffs this against what
 * it observes, so `labUp` only does what is missing.
 */
import { labWorkloads, type Gateway, type Host, type Topology } from "./topology.js";

/** Every veth and bridge the lab makes uses this MTU, unless the layout gives a site a smaller one. */
export const LAB_MTU = 1500;

export type LinkSpec =
  | { kind: "loopback"; name: "lo" }
  | { kind: "bridge"; name: string; mtu: number }
  | {
      kind: "veth";
      name: string;
      mtu: number;
      /** Bridge this end is enslaved to, if any. */
      master?: string;
      /** The other end of the pair. */
      peer: { netns: string; name: string };
      /** True on exactly one end: that namespace's plan creates the pair. */
      createsPair: boolean;
    };

export interface AddressSpec {
  dev: string;
  address: string;
  prefixLength: number;
}

export interface RouteSpec {
  /** `default` or a CIDR as `ip route` prints it (`198.18.1.0/24`). */
  dst: string;
  via: string;
}

export interface SysctlSpec {
  key: string;
  value: string;
  /** Skip when the key does not exist in this kernel (e.g. br_netfilter not loaded). */
  optional: boolean;
}

/** One iptables rule, as the arguments after `-A <chain>`. */
export interface FirewallRule {
  table: "nat" | "filter";
  chain: string;
  spec: string[];
}

export interface NamespaceSpec {
  netns: string;
  role: "inet" | "controller" | "gateway" | "host" | "workload";
  links: LinkSpec[];
  addresses: AddressSpec[];
  routes: RouteSpec[];
  sysctls: SysctlSpec[];
  rules: FirewallRule[];
}

const LO: LinkSpec = { kind: "loopback", name: "lo" };

/** The desired state of every namespace in creation order. */
export function labNetwork(t: Topology): NamespaceSpec[] {
  const inet: NamespaceSpec = {
    netns: t.inet.netns,
    role: "inet",
    links: [
      LO,
      ...(t.inet.controllerBridge ? [{ kind: "bridge" as const, name: t.inet.controllerBridge, mtu: LAB_MTU }] : []),
      ...t.controllers.map(
        (c): LinkSpec => ({
          kind: "veth",
          name: c.inetInterface,
          mtu: LAB_MTU,
          ...(t.inet.controllerBridge ? { master: t.inet.controllerBridge } : {}),
          peer: { netns: c.netns, name: c.interface },
          createsPair: true,
        }),
      ),
      ...t.gateways.map(
        (g): LinkSpec => ({
          kind: "veth",
          name: g.inetInterface,
          mtu: siteMtu(t, g.site),
          peer: { netns: g.netns, name: g.wanInterface },
          createsPair: true,
        }),
      ),
    ],
    addresses: [
      { dev: t.inet.controllerBridge ?? t.controller.inetInterface, address: t.controller.gateway, prefixLength: t.controller.prefixLength },
      ...t.gateways.map((g) => ({ dev: g.inetInterface, address: g.inetAddress, prefixLength: prefixLengthOf(g.transitCidr) })),
    ],
    // Only the cloud public blocks are routed; there is no default route and no route to any
    // private network, so onprem (and every LAN) is unreachable from the internet.
    routes: t.gateways.flatMap((g) => (g.publicCidr ? [{ dst: g.publicCidr, via: g.wanAddress }] : [])),
    sysctls: [
      { key: "net.ipv4.ip_forward", value: "1", optional: false },
      // The controllers' bridge is a plain switch, like the sites' LAN bridges.
      ...(t.inet.controllerBridge
        ? [
            { key: "net.bridge.bridge-nf-call-iptables", value: "0", optional: true },
            { key: "net.bridge.bridge-nf-call-ip6tables", value: "0", optional: true },
          ]
        : []),
    ],
    rules: [],
  };

  const ctls = t.controllers.map(
    (c): NamespaceSpec => ({
      netns: c.netns,
      role: "controller",
      links: [
        LO,
        {
          kind: "veth",
          name: c.interface,
          mtu: LAB_MTU,
          peer: { netns: t.inet.netns, name: c.inetInterface },
          createsPair: false,
        },
      ],
      addresses: [{ dev: c.interface, address: c.address, prefixLength: c.prefixLength }],
      routes: [{ dst: "default", via: c.gateway }],
      sysctls: [],
      rules: [],
    }),
  );

  const gateways = t.gateways.map((g) =>
    gatewaySpec(
      t,
      g,
      t.hosts.filter((h) => h.site === g.site),
    ),
  );
  const hosts = t.hosts.map((h) => hostSpec(t, h));
  // Workload namespaces start empty: the host's agent plumbs their veth (like a CNI plugin).
  const workloads = labWorkloads(t).map((w): NamespaceSpec => ({ netns: w.netns, role: "workload", links: [LO], addresses: [], routes: [], sysctls: [], rules: [] }));
  return [inet, ...ctls, ...gateways, ...hosts, ...workloads];
}

function gatewaySpec(t: Topology, g: Gateway, hosts: Host[]): NamespaceSpec {
  const site = t.sites.find((s) => s.name === g.site);
  const lanCidr = site?.privateCidr ?? `${g.lanAddress}/${g.lanPrefixLength}`;
  const mtu = siteMtu(t, g.site);
  return {
    netns: g.netns,
    role: "gateway",
    links: [
      LO,
      { kind: "bridge", name: g.lanInterface, mtu },
      {
        kind: "veth",
        name: g.wanInterface,
        mtu,
        peer: { netns: t.inet.netns, name: g.inetInterface },
        createsPair: false,
      },
      ...hosts.map(
        (h): LinkSpec => ({
          kind: "veth",
          name: h.gatewayPort,
          mtu,
          master: g.lanInterface,
          peer: { netns: h.netns, name: h.interface },
          createsPair: true,
        }),
      ),
    ],
    addresses: [
      { dev: g.wanInterface, address: g.wanAddress, prefixLength: prefixLengthOf(g.transitCidr) },
      { dev: g.lanInterface, address: g.lanAddress, prefixLength: g.lanPrefixLength },
      // Machines of the site without an agent: more addresses of the bridge, answered by the gateway.
      ...(site?.machines ?? []).map((address) => ({ dev: g.lanInterface, address, prefixLength: g.lanPrefixLength })),
    ],
    routes: [{ dst: "default", via: g.inetAddress }],
    sysctls: [
      { key: "net.ipv4.ip_forward", value: "1", optional: false },
      // A router that forwards a hairpinned packet back out of the LAN would otherwise send ICMP
      // redirects telling the sender to use the peer's MAC for a public address it does not own.
      { key: "net.ipv4.conf.all.send_redirects", value: "0", optional: false },
      { key: `net.ipv4.conf.${g.lanInterface}.send_redirects`, value: "0", optional: false },
      // Keep the LAN bridge a plain switch: bridged frames skip iptables (br_netfilter may be loaded).
      { key: "net.bridge.bridge-nf-call-iptables", value: "0", optional: true },
      { key: "net.bridge.bridge-nf-call-ip6tables", value: "0", optional: true },
    ],
    rules: g.nat === "one-to-one" ? oneToOneNat(g, hosts, lanCidr) : masquerade(g, lanCidr, g.nat === "random"),
  };
}

/** 1:1 NAT: each host's public address maps to its private one, both directions. */
function oneToOneNat(g: Gateway, hosts: Host[], lanCidr: string): FirewallRule[] {
  return hosts.flatMap((h): FirewallRule[] => (h.publicAddress ? oneToOneHostRules(g, h, lanCidr, h.publicAddress) : []));
}

/** The 1:1 NAT rules of one host at public address `pub` (labMovePublicAddress gives it another). */
export function oneToOneHostRules(g: Pick<Gateway, "wanInterface" | "lanInterface">, h: Pick<Host, "privateAddress">, lanCidr: string, pub: string): FirewallRule[] {
  const priv = h.privateAddress;
  return [
    { table: "nat", chain: "PREROUTING", spec: ["-d", `${pub}/32`, "-j", "DNAT", "--to-destination", priv] },
    { table: "nat", chain: "POSTROUTING", spec: ["-s", `${priv}/32`, "-o", g.wanInterface, "-j", "SNAT", "--to-source", pub] },
    // Hairpin: a same-site host reaching this host's *public* address sees it coming from the
    // sender's public address (as in a cloud VPC), and the reply returns through the gateway.
    {
      table: "nat",
      chain: "POSTROUTING",
      spec: ["-s", `${priv}/32`, "-d", lanCidr, "-o", g.lanInterface, "-m", "conntrack", "--ctstate", "DNAT", "-j", "SNAT", "--to-source", pub],
    },
  ];
}

/**
 * Masquerade: outbound flows share the WAN address; nothing inbound is mapped or admitted. A
 * masquerading gateway keeps a flow's source port where it can, so every destination sees a host's
 * port at the same address:port (endpoint-independent mapping); a `random` one picks a random
 * port for every new flow (`--random-fully`, like nftables `masquerade random,fully-random`), so
 * each destination sees another port (endpoint-dependent: what defeats hole punching).
 *
 * Unsolicited packets are dropped in INPUT as well as FORWARD: a packet addressed to the WAN
 * address itself that were let in would leave a conntrack entry behind, and the host's own flow to
 * that sender would then be given another port (the gateway's clash), as on a router that answers
 * nothing on its WAN.
 */
function masquerade(g: Gateway, lanCidr: string, random = false): FirewallRule[] {
  return [
    { table: "nat", chain: "POSTROUTING", spec: ["-s", lanCidr, "-o", g.wanInterface, "-j", "MASQUERADE", ...(random ? ["--random-fully"] : [])] },
    { table: "filter", chain: "FORWARD", spec: ["-i", g.wanInterface, "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP"] },
    { table: "filter", chain: "INPUT", spec: ["-i", g.wanInterface, "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP"] },
  ];
}

/** The MTU of every link of a site. */
export function siteMtu(t: Topology, site: string): number {
  return t.sites.find((s) => s.name === site)?.mtu ?? LAB_MTU;
}

function hostSpec(t: Topology, h: Host): NamespaceSpec {
  const gw = t.gateways.find((g) => g.site === h.site);
  return {
    netns: h.netns,
    role: "host",
    links: [
      LO,
      {
        kind: "veth",
        name: h.interface,
        mtu: siteMtu(t, h.site),
        peer: { netns: gw?.netns ?? "", name: h.gatewayPort },
        createsPair: false,
      },
    ],
    addresses: [{ dev: h.interface, address: h.privateAddress, prefixLength: h.prefixLength }],
    routes: [{ dst: "default", via: h.gateway }],
    sysctls: [],
    rules: [],
  };
}

function prefixLengthOf(cidr: string): number {
  const len = Number(cidr.split("/")[1]);
  if (!Number.isInteger(len)) throw new Error(`bad CIDR ${cidr}`);
  return len;
}
