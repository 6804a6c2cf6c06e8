/**
 * The inventory's pure decisions: which bound nodes one sync removes, the labels and identity a
 * node gets from its instance's tags, site routes and overlapping CIDRs, and the config section.
 */
import type { SiteSource } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { ControllerConfig } from "../config.js";
import { ValidationError } from "../errors.js";
import { parseOrThrow } from "../validation.js";
import { isGateway, planGateways } from "./gateways.js";
import { cloudLabels, desiredNode, identityTags, tagLabelKey } from "./tag-labels.js";
import { decideRemovals, removalLimit, type Binding, type RemovalInput } from "./revoke.js";
import { siteRoutes } from "./routes.js";
import { instanceKey, kvToken, type StoredInstance, type StoredNetwork } from "./store.js";

const ACCOUNT = "111111111111";
const T = "2026-01-01T00:00:00.000Z";

function inst(id: string, over: Partial<StoredInstance> = {}): StoredInstance {
  return { provider: "aws", account: ACCOUNT, region: "eu-west-1", network: "vpc-1", id, name: id, privateIps: ["10.0.0.1"], publicIps: [], tags: {}, state: "running", seenAt: T, ...over };
}
const nodeIdOf = (n: number) => `n-${n.toString(16).padStart(16, "0")}`;
function bound(n: number, id: string): Binding {
  return { nodeId: nodeIdOf(n), key: instanceKey("aws", ACCOUNT, id), instanceId: id };
}
function input(listed: StoredInstance[], bindings: Binding[], over: Partial<RemovalInput> = {}): RemovalInput {
  return {
    outcome: "listed",
    complete: true,
    fetchedAt: T,
    listed: new Map(listed.map((i) => [instanceKey(i.provider, i.account, i.id), i])),
    baseline: listed.length,
    bindings,
    // Every bound instance was stored by an earlier sync.
    stored: new Map(bindings.map((b) => [b.key, inst(b.instanceId, { seenAt: "2025-12-31T00:00:00.000Z" })])),
    maxRemovalShare: 0.25,
    ...over,
  };
}

describe("inventory removal decisions", () => {
  it("removal - a terminated or absent instance's node goes; a running one stays; a stopped one is reported and kept", () => {
    const d = decideRemovals(input([inst("i-run"), inst("i-term", { state: "terminated" }), inst("i-stop", { state: "stopped" })], [bound(1, "i-run"), bound(2, "i-term"), bound(3, "i-stop"), bound(4, "i-gone")], { maxRemovalShare: 1 }));
    expect(d.remove.map((r) => [r.nodeId, r.reason]), "removed").toEqual([
      [nodeIdOf(2), "terminated"],
      [nodeIdOf(4), "absent"],
    ]);
    expect(d.remove[1]?.evidence, "evidence names the listing and the instance").toMatch(/complete listing .* does not have instance i-gone/);
    expect(d.stopped, "stopped").toEqual([{ nodeId: nodeIdOf(3), instance: "i-stop", state: "stopped" }]);
    expect(d.heldBack, "held back").toEqual([]);
  });

  it("removal - absence counts only for an instance this inventory stored, where the listing looked", () => {
    const bindings = [bound(1, "i-never-seen"), bound(2, "i-other-region"), bound(3, "i-gone")];
    const stored = new Map([
      [bindings[1]!.key, inst("i-other-region", { region: "us-east-1" })],
      [bindings[2]!.key, inst("i-gone")],
    ]);
    const d = decideRemovals(input([], bindings, { baseline: undefined, stored, maxRemovalShare: 1, covers: (i) => i.region === "eu-west-1" }));
    expect(d.remove.map((r) => r.instance), "removed").toEqual(["i-gone"]);
    expect(d.remove[0]?.evidence, "evidence says when it was last seen").toMatch(/last seen 2026-01-01/);
  });

  it("removal - an incomplete listing removes nothing; absence in it is no evidence", () => {
    const d = decideRemovals(input([inst("i-term", { state: "terminated" })], [bound(1, "i-term"), bound(2, "i-gone")], { complete: false, maxRemovalShare: 1 }));
    expect(d.remove, "removed from a partial listing").toEqual([]);
    expect(d.heldBack.map((r) => r.instance), "held back: the terminated one only").toEqual(["i-term"]);
    expect(d.heldBackReason, "reason").toMatch(/incomplete/);
  });

  it("removal - a failed fetch removes nothing", () => {
    const d = decideRemovals(input([], [bound(1, "i-a")], { outcome: "failed", complete: false }));
    expect([d.remove, d.heldBack], "nothing at all").toEqual([[], []]);
  });

  it("removal - a listing suddenly empty is suspicious: everything is held back", () => {
    const d = decideRemovals(input([], [bound(1, "i-a"), bound(2, "i-b")], { baseline: 5, maxRemovalShare: 1 }));
    expect(d.suspicious, "suspicious").toBe(true);
    expect(d.remove, "removed").toEqual([]);
    expect(d.heldBack.length, "held back").toBe(2);
    expect(d.heldBackReason, "reason").toMatch(/listed 5 instances last time and none now/);
    const first = decideRemovals(input([], [bound(1, "i-a")], { baseline: undefined, maxRemovalShare: 1 }));
    expect([first.suspicious, first.remove.length], "empty with no history is not suspicious").toEqual([false, 1]);
  });

  it("removal - at most maxRemovalShare of the bound nodes per cycle (at least one), terminated first", () => {
    expect([removalLimit(0, 0.25), removalLimit(1, 0.25), removalLimit(4, 0.25), removalLimit(9, 0.25), removalLimit(10, 0.5)], "limits").toEqual([0, 1, 1, 2, 5]);
    const listed = [inst("i-1", { state: "terminated" }), inst("i-2", { state: "terminated" }), inst("i-3"), inst("i-4"), inst("i-5"), inst("i-6"), inst("i-7"), inst("i-8")];
    const bindings = [bound(9, "i-gone"), ...listed.map((i, n) => bound(n + 1, i.id))];
    const d = decideRemovals(input(listed, bindings));
    expect(d.remove.map((r) => r.instance), "removed: 9 bound × 0.25 = 2, terminated first").toEqual(["i-1", "i-2"]);
    expect(d.heldBack.map((r) => r.instance), "held back").toEqual(["i-gone"]);
    expect(d.heldBackReason, "reason").toMatch(/maxRemovalShare 0.25 of 9 bound nodes allows 2/);
  });
});

describe("inventory labels and identity", () => {
  it("labels - facts and tags become cloud. labels; odd tag keys are made label keys; long values and collisions are reported", () => {
    const got = cloudLabels(inst("i-1", { zone: "eu-west-1a", tags: { Name: "web 1", "aws:autoscaling:groupName": "asg", "team name": "a", "team_name": "b", big: "x".repeat(300) } }));
    expect(got.labels, "labels").toEqual({
      "cloud.provider": "aws",
      "cloud.account": ACCOUNT,
      "cloud.region": "eu-west-1",
      "cloud.zone": "eu-west-1a",
      "cloud.instance": "i-1",
      "cloud.tag.Name": "web 1",
      "cloud.tag.aws:autoscaling:groupName": "asg",
      "cloud.tag.team_name": "a",
    });
    expect(got.skipped.map((s) => s.tag).sort(), "skipped").toEqual(["big", "team_name"]);
    expect(tagLabelKey("k".repeat(100)).length, "key length").toBe(63);
  });

  it("identity - tags weft:identity or weft:namespace/weft:serviceaccount (also weft-…, weft_…) win over the enrollment labels", () => {
    expect(identityTags({ "weft-namespace": "shop", weft_serviceaccount: "api", other: "x" }), "GCP-style keys").toEqual({ "weft:namespace": "shop", "weft:serviceaccount": "api" });
    const node = { labels: { "weft:namespace": "base", "cloud.tag.old": "gone", env: "prod" } };
    const a = desiredNode(node, inst("i-1", { tags: { "weft:namespace": "shop", "weft:serviceaccount": "api" } }), "weft.internal");
    expect([a.spiffeId, a.identitySource], "from tags").toEqual(["spiffe://weft.internal/ns/shop/sa/api", "tags"]);
    expect(a.labels["cloud.tag.old"], "stale cloud. labels are dropped").toBeUndefined();
    expect([a.labels.env, a.labels["weft:namespace"]], "enrollment labels stay").toEqual(["prod", "base"]);
    const b = desiredNode(node, inst("i-1"), "weft.internal");
    expect([b.spiffeId, b.identitySource], "no identity tags: the enrollment labels").toEqual(["spiffe://weft.internal/ns/base/sa/default", "labels"]);
    const c = desiredNode(node, inst("i-1", { tags: { "weft:identity": "spiffe://other.domain/ns/a/sa/b" } }), "weft.internal");
    expect(c.spiffeId, "a refused identity tag keeps the enrollment identity").toBe("spiffe://weft.internal/ns/base/sa/default");
    expect(c.problems.join(" "), "the refusal is reported").toMatch(/identity tags refused.*trust domain weft.internal/);
  });
});

describe("inventory site routes and overlaps", () => {
  const net = (id: string, cidrs: string[], over: Partial<StoredNetwork> = {}): StoredNetwork => ({ provider: "aws", account: ACCOUNT, id, cidrs, subnets: [], seenAt: T, ...over });

  it("routes - a network's site is its bound nodes' site, else the site an on-prem file declares, else the network; overlaps between networks are reported, never merged", () => {
    const networks = [
      net("vpc-a", ["10.0.0.0/16"]),
      net("vpc-b", ["10.0.128.0/17", "fd00::/64"]),
      net("vpc-c", ["172.16.0.0/16"]),
      net("lan", [], { provider: "onprem", account: "dc", subnets: [{ id: "s1", cidr: "192.168.1.0/24" }] }),
    ];
    const instances = [inst("i-1", { network: "vpc-a", boundNode: nodeIdOf(1) }), inst("i-2", { network: "vpc-c", boundNode: nodeIdOf(2) })];
    const sites = new Map([
      [nodeIdOf(1), "aws-eu"],
      [nodeIdOf(2), "aws-eu"],
    ]);
    const { siteRoutes: routes, overlaps } = siteRoutes({ networks, instances, siteOf: (id) => sites.get(id) });
    expect(routes, "site routes").toEqual([
      { site: "aws-eu", inferred: false, cidrs: ["10.0.0.0/16", "172.16.0.0/16"], networks: ["vpc-a", "vpc-c"], conflicts: ["10.0.0.0/16"] },
      { site: "aws:vpc-b", inferred: true, cidrs: ["10.0.128.0/17"], networks: ["vpc-b"], conflicts: ["10.0.128.0/17"] },
      { site: "dc", inferred: false, cidrs: ["192.168.1.0/24"], networks: ["lan"], conflicts: [] },
    ]);
    expect(overlaps, "overlaps").toEqual([
      {
        a: { provider: "aws", account: ACCOUNT, network: "vpc-a", site: "aws-eu", cidr: "10.0.0.0/16" },
        b: { provider: "aws", account: ACCOUNT, network: "vpc-b", site: "aws:vpc-b", cidr: "10.0.128.0/17" },
        sameSite: false,
      },
    ]);
  });
});

describe("site route gateways", () => {
  type Status = "online" | "offline" | "never-seen";
  const gw = (n: number, site: string, status: Status, labels: Record<string, string> = { "weft:gateway": "true" }, more: { siteSource?: SiteSource; siteRoutes?: string[] } = {}) => ({
    nodeId: nodeIdOf(n),
    name: `${site}-${n}`,
    site,
    labels,
    status,
    siteSource: "join-key" as SiteSource,
    ...more,
  });
  const route = (site: string, cidrs: string[], conflicts: string[] = [], inferred = false) => ({ site, inferred, cidrs, networks: ["net"], conflicts });
  const reserved = [
    { cidr: "100.64.0.0/16", what: "overlay.cidr" },
    { cidr: "100.80.0.0/12", what: "overlay.workloadCidr" },
  ];

  it("gateways - one advertiser per site; conflicts and overlay ranges are withheld with the reason; sites without a gateway advertise nothing", () => {
    const plan = planGateways({
      siteRoutes: [route("aws", ["10.10.0.0/16", "100.64.0.0/10"]), route("gcp", ["10.30.0.0/16", "10.40.0.0/16"], ["10.40.0.0/16"]), route("azure", ["10.20.0.0/16"]), route("aws:vpc-9", ["10.90.0.0/16"], [], true)],
      nodes: [gw(1, "aws", "online"), gw(2, "gcp", "online"), { ...gw(3, "azure", "online"), labels: { env: "prod" } }, gw(4, "aws:vpc-9", "online")],
      reserved,
    });
    const bySite = Object.fromEntries(plan.siteRoutes.map((r) => [r.site, { gateway: r.gateway?.name, advertised: r.advertised, withheld: r.withheld }]));
    expect(bySite, "plan per site").toEqual({
      aws: { gateway: "aws-1", advertised: ["10.10.0.0/16"], withheld: [{ cidr: "100.64.0.0/10", reason: "overlaps overlay.cidr 100.64.0.0/16" }] },
      gcp: { gateway: "gcp-2", advertised: ["10.30.0.0/16"], withheld: [{ cidr: "10.40.0.0/16", reason: "overlaps another network in the inventory (see overlaps)" }] },
      azure: { gateway: undefined, advertised: [], withheld: [] },
      "aws:vpc-9": { gateway: undefined, advertised: [], withheld: [] },
    });
    expect(Object.fromEntries(plan.byNode), "routes by node").toEqual({ [nodeIdOf(1)]: ["10.10.0.0/16"], [nodeIdOf(2)]: ["10.30.0.0/16"] });
  });

  it("gateways - online beats not-yet-seen beats offline, then name order; a cloud tag makes a gateway too", () => {
    const plan = (nodes: ReturnType<typeof gw>[]) => planGateways({ siteRoutes: [route("gcp", ["10.30.0.0/16"])], nodes, reserved }).siteRoutes[0]?.gateway?.name;
    expect(plan([gw(1, "gcp", "online"), gw(2, "gcp", "online")]), "both online: first by name").toBe("gcp-1");
    expect(plan([gw(1, "gcp", "offline"), gw(2, "gcp", "online")]), "first offline: the next online one").toBe("gcp-2");
    expect(plan([gw(1, "gcp", "offline"), gw(2, "gcp", "never-seen")]), "after a controller restart: one not yet heard from").toBe("gcp-2");
    expect(plan([gw(1, "gcp", "offline"), gw(2, "gcp", "offline")]), "all offline: still one (it may come back)").toBe("gcp-1");
    expect(plan([gw(1, "gcp", "online", { "cloud.tag.weft-gateway": "True" })]), "GCP label spelling of the tag").toBe("gcp-1");
    expect(plan([gw(1, "gcp", "online", { "cloud.tag.weft:gateway": "false" })]), "tag false").toBeUndefined();
    expect(isGateway({ "weft:gateway": "yes" }), "only true counts").toBe(false);
  });

  it("gateways - sticky: an online advertiser keeps the routes whatever joins; a newcomer takes over only when it goes offline, and keeps them when it returns", () => {
    const plan = (nodes: ReturnType<typeof gw>[]) => planGateways({ siteRoutes: [route("gcp", ["10.30.0.0/16"])], nodes, reserved }).siteRoutes[0]?.gateway?.name;
    const advertising = { siteRoutes: ["10.30.0.0/16"] };
    expect(plan([gw(1, "gcp", "online"), gw(2, "gcp", "online", undefined, advertising)]), "gcp-2 advertises; gcp-1 (earlier by name) is a newcomer").toBe("gcp-2");
    expect(plan([gw(1, "gcp", "online"), gw(2, "gcp", "offline", undefined, advertising)]), "the advertiser offline: failover").toBe("gcp-1");
    expect(plan([gw(1, "gcp", "online", undefined, advertising), gw(2, "gcp", "online")]), "gcp-2 back online: gcp-1 keeps them").toBe("gcp-1");
    expect(plan([gw(1, "gcp", "never-seen"), gw(2, "gcp", "online", undefined, advertising)]), "not yet heard from never beats an online advertiser").toBe("gcp-2");
  });

  it("gateways - a node whose site only its own request named is never a gateway", () => {
    const plan = (nodes: ReturnType<typeof gw>[]) => planGateways({ siteRoutes: [route("gcp", ["10.30.0.0/16"])], nodes, reserved }).siteRoutes[0]?.gateway?.name;
    expect(plan([gw(1, "gcp", "online", undefined, { siteSource: "request" })]), "self-declared site").toBeUndefined();
    const { siteSource: _s, ...legacy } = gw(1, "gcp", "online");
    expect(planGateways({ siteRoutes: [route("gcp", ["10.30.0.0/16"])], nodes: [legacy], reserved }).siteRoutes[0]?.gateway, "enrolled before sites were bound").toBeUndefined();
    expect(plan([gw(1, "gcp", "online", undefined, { siteSource: "request" }), gw(2, "gcp", "online", undefined, { siteSource: "network" })]), "the vouched one").toBe("gcp-2");
  });

  it("gateways - routes over the controller, a tunnel endpoint or public space are withheld with the reason; a public CIDR named for the site is advertised and marked explicit", () => {
    const plan = planGateways({
      siteRoutes: [route("gcp", ["10.30.0.0/16", "1.0.0.0/8", "128.0.0.0/1", "198.19.0.0/24", "203.0.113.0/24"])],
      nodes: [gw(1, "gcp", "online")],
      reserved,
      screen: { controllerAddresses: [{ address: "198.19.0.2", what: "API" }], endpoints: [], publicRoutes: (site) => (site === "gcp" ? ["203.0.113.0/24"] : []) },
    });
    const r = plan.siteRoutes[0]!;
    expect(r.advertised, "advertised").toEqual(["10.30.0.0/16", "203.0.113.0/24"]);
    expect(r.withheld.map((w) => [w.cidr, w.reason.split(";")[0]]), "withheld").toEqual([
      ["1.0.0.0/8", "outside private and CGNAT space"],
      ["128.0.0.0/1", "covers the controller's API address 198.19.0.2"],
      ["198.19.0.0/24", "covers the controller's API address 198.19.0.2"],
    ]);
    expect(Object.fromEntries(plan.explicitByNode), "explicit").toEqual({ [nodeIdOf(1)]: ["203.0.113.0/24"] });
  });
});

describe("inventory config and keys", () => {
  it("config - defaults: no accounts, 60 s, share 0.25, remap pool 100.112.0.0/12 (outside the node, workload and service ranges)", () => {
    expect(ControllerConfig.parse({}).inventory, "defaults").toEqual({
      intervalSeconds: 60,
      maxRemovalShare: 0.25,
      advertiseSiteRoutes: true,
      remapPool: "100.112.0.0/12",
      accounts: [],
      instanceIdentity: { sourceAddress: "not-another-instance", aws: {}, azure: { nonceTtlSeconds: 120 }, gcp: {} },
      sites: [],
    });
    expect(ControllerConfig.safeParse({ overlay: { cidr: "100.112.0.0/16" } }).success, "a pool overlapping the overlay is refused").toBe(false);
    const svc = ControllerConfig.safeParse({ inventory: { remapPool: "100.96.0.0/12" } });
    expect(svc.success, "a pool overlapping the service range (the old default) is refused").toBe(false);
    expect(svc.error?.issues[0]?.message, "the message names both").toMatch(/inventory\.remapPool 100\.96\.0\.0\/12 overlaps overlay\.serviceCidr 100\.96\.0\.0\/16/);
    expect(ControllerConfig.safeParse({ inventory: { remapPool: "" } }).success, "remapping off").toBe(true);
  });

  it("config - a bad account is refused and the error names the field", () => {
    const cases: [unknown, RegExp][] = [
      [{ accounts: [{ provider: "aws", account: "123", regions: ["eu-west-1"] }] }, /inventory\.accounts\.0\.account: must be the 12-digit AWS account id/],
      [{ accounts: [{ provider: "aws", account: ACCOUNT, regions: [] }] }, /inventory\.accounts\.0\.regions: name at least one region/],
      [{ accounts: [{ provider: "azure", subscriptionId: "nope" }] }, /inventory\.accounts\.0\.subscriptionId: must be a subscription id/],
      [{ accounts: [{ provider: "gcp", project: "P" }] }, /inventory\.accounts\.0\.project/],
      [{ accounts: [{ provider: "vmware" }] }, /inventory\.accounts\.0\.provider/],
      [{ accounts: [{ provider: "onprem", file: "a.yaml", extra: 1 }] }, /inventory\.accounts\.0/],
      [{ accounts: [{ provider: "onprem", file: "a.yaml" }, { provider: "onprem", file: "a.yaml" }] }, /inventory\.accounts\.1: onprem:a.yaml is already configured/],
      [{ maxRemovalShare: 0 }, /inventory\.maxRemovalShare/],
      [{ intervalSeconds: 0 }, /inventory\.intervalSeconds/],
    ];
    for (const [inventory, want] of cases) {
      let err: unknown;
      try {
        parseOrThrow(ControllerConfig, { inventory }, "controller config");
      } catch (e) {
        err = e;
      }
      expect(err, `inventory ${JSON.stringify(inventory)}`).toBeInstanceOf(ValidationError);
      expect((err as Error).message, `inventory ${JSON.stringify(inventory)}`).toMatch(want);
    }
  });

  it("keys - ids become KV-safe tokens without collisions", () => {
    expect([kvToken("i-0abc"), kvToken("123456789012")], "safe ids unchanged").toEqual(["i-0abc", "123456789012"]);
    const odd = ["db-1.paris", "/subscriptions/x/vm", "a b", "=x", "é"];
    const tokens = odd.map(kvToken);
    for (const t of tokens) expect(t, "token").toMatch(/^[A-Za-z0-9_=-]+$/);
    expect(new Set(tokens).size, "distinct").toBe(odd.length);
    expect(instanceKey("onprem", "dc paris", "db-1.paris"), "key").toBe(`i.onprem.${kvToken("dc paris")}.${kvToken("db-1.paris")}`);
  });
});
