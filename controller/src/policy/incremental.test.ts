/**
 * Incremental compilation equals full compilation: random sequences of changes (nodes added,
 * removed, relabelled, given other identities or workloads; policies, identities and services
 * put and deleted; backend health flipped) applied to a snapshot, after each step the nodes
 * PolicyDelta / ServicesDelta name are recompiled into a cache, and every node's cached output
 * must equal what a fresh compiler over the whole snapshot makes of it. Seeded, so a failure
 * names the seed and step that reproduce it.
 */
import { Policy, Service, type Identity, type NodeRecord, type PolicyInput, type ServiceInput, type ServiceRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { ServicesCompiler } from "../services/compile.js";
import { ServicesDelta } from "../services/incremental.js";
import { PolicyReach } from "../services/reach.js";
import { PolicyCompiler } from "./compile.js";
import { compileInputOf, PolicyDelta } from "./incremental.js";

const TD = "weft.test";
const NS = ["a", "b", "c"];
const SA = ["x", "y"];
/** Every SPIFFE ID the test uses, each with its fixed number. */
const POOL: Identity[] = NS.flatMap((ns) => SA.map((sa) => `spiffe://${TD}/ns/${ns}/sa/${sa}`)).map((spiffeId, i) => ({ id: 300 + i, spiffeId }));

/** mulberry32: a small seeded generator, so that every run of a seed is the same. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
  const chance = (p: number) => next() < p;
  return { int, pick, chance };
}
type Rng = ReturnType<typeof rng>;

interface World {
  nodes: Map<string, NodeRecord>;
  policies: Map<string, Policy>;
  identities: Map<string, Identity>;
  services: Map<string, ServiceRecord>;
  unhealthy: Set<string>;
}

const NODE_IDS = Array.from({ length: 10 }, (_, i) => `n-${(i + 1).toString(16).padStart(16, "0")}`);

function randomNode(r: Rng, nodeId: string): NodeRecord {
  const index = NODE_IDS.indexOf(nodeId) + 1;
  const labels: Record<string, string> = {};
  if (r.chance(0.6)) labels.role = r.pick(["web", "db"]);
  if (r.chance(0.5)) labels.tier = r.pick(["1", "2"]);
  if (r.chance(0.2)) labels["cloud.provider"] = r.pick(["aws", "gcp"]);
  const workloads = Array.from({ length: r.int(3) }, (_, w) => ({ name: `w${w}`, address: `100.80.${index}.${w + 1}`, identity: r.pick(POOL) }));
  return {
    version: 1,
    nodeId,
    name: `node-${index}`,
    site: r.pick(["s1", "s2"]),
    wireguardPublicKey: "A".repeat(43) + "=",
    natsPublicKey: "U" + "A".repeat(55),
    overlayAddress: `100.64.0.${index}`,
    endpoints: {},
    labels,
    ...(r.chance(0.9) ? { identity: r.pick(POOL) } : {}),
    joinKeyId: "k",
    enrolledAt: "",
    ...(workloads.length > 0 ? { workloads } : {}),
  };
}

function randomSelector(r: Rng): PolicyInput["rules"][number]["from"][number] {
  switch (r.int(5)) {
    case 0:
      return { labels: r.pick<Record<string, string>>([{ role: "web" }, { role: "db" }, { tier: "1" }, { role: "web", tier: "2" }]) };
    case 1:
      return { namespace: r.pick(NS) };
    case 2:
      return { namespace: r.pick(NS), serviceAccount: r.pick(SA) };
    case 3:
      return { identity: r.pick(POOL).spiffeId };
    default:
      return { cidr: "10.0.0.0/8" };
  }
}

function randomPolicy(r: Rng): Policy {
  const rules = Array.from({ length: 1 + r.int(2) }, () => ({
    action: r.pick(["allow", "allow", "deny"] as const),
    from: Array.from({ length: 1 + r.int(2) }, () => randomSelector(r)),
    to: Array.from({ length: 1 + r.int(2) }, () => randomSelector(r)).filter((s) => !("cidr" in s)),
    ...(r.chance(0.7) ? { ports: [{ protocol: r.pick(["tcp", "udp", "any"] as const), ...(r.chance(0.8) ? { port: r.pick([80, 443, 8080]) } : {}) }] } : {}),
  })).filter((rule) => rule.to.length > 0);
  return Policy.parse({ name: r.pick(["p1", "p2", "p3"]), rules: rules.length > 0 ? rules : [{ action: "allow", from: [{ namespace: "a" }], to: [{ namespace: "b" }] }] });
}

function randomService(r: Rng): ServiceRecord {
  const name = r.pick(["s1", "s2"]);
  const selector = () =>
    r.pick<NonNullable<ServiceInput["backends"]>[number]>([{ namespace: r.pick(NS) }, { namespace: r.pick(NS), serviceAccount: r.pick(SA), ...(r.chance(0.3) ? { sites: ["s1"] } : {}) }, { labels: { role: r.pick(["web", "db"]) } }, { identity: r.pick(POOL).spiffeId }]);
  const spec: ServiceInput = {
    name,
    namespace: "a",
    ports: [{ port: 80, targetPort: r.pick([80, 8080]) }, ...(r.chance(0.4) ? [{ port: 53, protocol: "udp" as const }] : [])],
    backends: [selector(), ...(r.chance(0.3) ? [selector()] : [])],
    ...(r.chance(0.3) ? { healthCheck: { protocol: "tcp" as const } } : {}),
  };
  return { version: 1, spec: Service.parse(spec), vip: name === "s1" ? "100.96.0.1" : "100.96.0.2", createdAt: "t0", updatedAt: "t1" };
}

/** One random change; returns the node id it put or deleted, if any. */
function mutate(r: Rng, w: World): string | undefined {
  switch (r.int(9)) {
    case 0:
    case 1:
    case 2: {
      const nodeId = r.pick(NODE_IDS);
      w.nodes.set(nodeId, randomNode(r, nodeId));
      return nodeId;
    }
    case 3: {
      const nodeId = r.pick(NODE_IDS);
      w.nodes.delete(nodeId);
      return nodeId;
    }
    case 4: {
      const p = randomPolicy(r);
      w.policies.set(p.name, p);
      return undefined;
    }
    case 5:
      w.policies.delete(r.pick(["p1", "p2", "p3"]));
      return undefined;
    case 6: {
      const i = r.pick(POOL);
      if (r.chance(0.5)) w.identities.set(`spiffe.${i.id}`, i);
      else w.identities.delete(`spiffe.${i.id}`);
      return undefined;
    }
    case 7: {
      if (r.chance(0.7)) {
        const s = randomService(r);
        w.services.set(s.spec.name, s);
      } else w.services.delete(r.pick(["s1", "s2"]));
      return undefined;
    }
    default: {
      const address = r.chance(0.5) ? `100.64.0.${1 + r.int(NODE_IDS.length)}` : `100.80.${1 + r.int(NODE_IDS.length)}.${1 + r.int(2)}`;
      if (!w.unhealthy.delete(address)) w.unhealthy.add(address);
      return undefined;
    }
  }
}

const healthyIn = (w: World) => (_service: string, b: { address: string }, checked: boolean) => !checked || !w.unhealthy.has(b.address);

function fullPolicies(w: World): Map<string, string> {
  const compiler = new PolicyCompiler(compileInputOf(w.policies.values(), w.identities.values(), w.nodes.values()));
  return new Map([...w.nodes].map(([id, n]) => [id, JSON.stringify(compiler.compile(n))]));
}

function fullServices(w: World): Map<string, string> {
  const policy = new PolicyCompiler(compileInputOf(w.policies.values(), w.identities.values(), w.nodes.values()));
  const compiler = new ServicesCompiler({ services: [...w.services.values()], nodes: [...w.nodes.values()], reach: new PolicyReach(policy), healthy: healthyIn(w), zone: TD, serviceCidr: "100.96.0.0/16" });
  return new Map([...w.nodes].map(([id, n]) => [id, JSON.stringify(compiler.compile(n))]));
}

function sorted(m: Map<string, string>): [string, string][] {
  return [...m].sort(([a], [b]) => a.localeCompare(b));
}

describe("incremental compilation", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`incremental - random changes (seed ${seed}): incremental policy and services records equal a full recompile after every step`, () => {
      const r = rng(seed);
      const w: World = { nodes: new Map(), policies: new Map(), identities: new Map(), services: new Map(), unhealthy: new Set() };
      for (let i = 0; i < 6; i++) mutate(r, w);
      const policyDelta = new PolicyDelta();
      const servicesDelta = new ServicesDelta({ healthy: healthyIn(w), zone: TD, serviceCidr: "100.96.0.0/16" });
      const policyCache = new Map<string, string>();
      const servicesCache = new Map<string, string>();
      let changed: Set<string> | "all" = "all";
      let compiledPolicies = 0;
      let compiledServices = 0;
      const steps = 300;
      for (let step = 0; step < steps; step++) {
        const pd = policyDelta.update(compileInputOf(w.policies.values(), w.identities.values(), w.nodes.values()), w.nodes, changed);
        for (const nodeId of pd) {
          const n = w.nodes.get(nodeId);
          if (n) policyCache.set(nodeId, JSON.stringify(policyDelta.compiler.compile(n)));
          else policyCache.delete(nodeId);
        }
        compiledPolicies += pd.size;
        const sd = servicesDelta.update({ services: w.services.values(), nodes: w.nodes, policies: w.policies.values(), identities: w.identities.values() }, changed);
        for (const nodeId of sd.dirty) {
          const n = w.nodes.get(nodeId);
          if (n) servicesCache.set(nodeId, JSON.stringify(sd.compiler.compile(n)));
          else servicesCache.delete(nodeId);
        }
        compiledServices += sd.dirty.size;
        expect(sorted(policyCache), `seed ${seed} step ${step}: node policies, incremental vs full`).toEqual(sorted(fullPolicies(w)));
        expect(sorted(servicesCache), `seed ${seed} step ${step}: node services, incremental vs full`).toEqual(sorted(fullServices(w)));
        changed = new Set();
        for (let k = 1 + r.int(3); k > 0; k--) {
          const nodeId = mutate(r, w);
          if (nodeId) changed.add(nodeId);
        }
      }
      // Not a full recompile in disguise: fewer nodes compiled than a full pass per step would.
      expect(compiledPolicies, `policy compilations over ${steps} steps of ${NODE_IDS.length} nodes`).toBeLessThan(steps * NODE_IDS.length * 0.8);
      expect(compiledServices, `services compilations over ${steps} steps`).toBeLessThan(steps * NODE_IDS.length);
    });
  }

  it("incremental - a node joining with an identity others hold touches only itself; a policy change only the nodes in its old and new destination", () => {
    const w: World = { nodes: new Map(), policies: new Map(), identities: new Map(), services: new Map(), unhealthy: new Set() };
    const sim = POOL[0]!;
    const other = POOL[1]!;
    const node = (i: number, identity: Identity): NodeRecord => {
      const { workloads: _none, ...n } = randomNode(rng(i), NODE_IDS[i]!);
      return { ...n, identity, labels: { role: "web" } };
    };
    for (let i = 0; i < 6; i++) w.nodes.set(NODE_IDS[i]!, node(i, i < 4 ? sim : other));
    const policy = (port: number, to: PolicyInput["rules"][number]["to"]) => Policy.parse({ name: "p1", rules: [{ action: "allow", from: [{ labels: { role: "web" } }], to, ports: [{ protocol: "tcp", port }] }] });
    w.policies.set("p1", policy(80, [{ identity: sim.spiffeId }]));
    const delta = new PolicyDelta();
    const update = (changed: Iterable<string> | "all") => [...delta.update(compileInputOf(w.policies.values(), w.identities.values(), w.nodes.values()), w.nodes, changed)].sort();
    expect(update("all"), "first pass: every node").toEqual(NODE_IDS.slice(0, 6));
    w.nodes.set(NODE_IDS[6]!, node(6, sim));
    expect(update([NODE_IDS[6]!]), "a node with the shared identity joins").toEqual([NODE_IDS[6]]);
    w.nodes.delete(NODE_IDS[6]!);
    expect(update([NODE_IDS[6]!]), "and leaves").toEqual([NODE_IDS[6]]);
    w.policies.set("p1", policy(81, [{ identity: sim.spiffeId }]));
    expect(update([]), "ports changed: the destination's holders").toEqual(NODE_IDS.slice(0, 4));
    w.policies.set("p1", policy(81, [{ identity: other.spiffeId }]));
    expect(update([]), "destination moved: old and new holders").toEqual(NODE_IDS.slice(0, 6));
    expect(update([]), "nothing changed: nothing").toEqual([]);
  });
});
