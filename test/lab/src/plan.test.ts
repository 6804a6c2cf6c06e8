/** Unit tests of the planner: complete lab → no steps, empty or half-built lab → only what is missing. */
import { describe, expect, it } from "vitest";
import { labNetwork, type NamespaceSpec } from "./network.js";
import { emptyObservation, ruleKey, type ObservedNamespace } from "./observe.js";
import { classifyNamespaces, describePlan, planLab, planNamespace, restoreScript } from "./plan.js";
import { labTopology } from "./topology.js";

/** What observing a fully built namespace would return. */
function complete(spec: NamespaceSpec): ObservedNamespace {
  const obs = emptyObservation(spec.netns, true);
  for (const l of spec.links) {
    obs.links.set(l.name, {
      name: l.name,
      kind: l.kind === "loopback" ? undefined : l.kind,
      mtu: l.kind === "loopback" ? 65536 : l.mtu,
      master: l.kind === "veth" ? l.master : undefined,
      up: true,
      lowerUp: true,
      addresses: spec.addresses.filter((a) => a.dev === l.name).map((a) => `${a.address}/${a.prefixLength}`),
    });
  }
  obs.routes = spec.routes.map((r) => ({ dst: r.dst, via: r.via }));
  for (const s of spec.sysctls) obs.sysctls.set(s.key, s.value);
  for (const r of spec.rules) obs.rules.add(ruleKey(r));
  return obs;
}

describe("lab - plan", () => {
  const specs = labNetwork(labTopology());
  const find = (netns: string): NamespaceSpec => {
    const s = specs.find((x) => x.netns === netns);
    if (!s) throw new Error(`no spec ${netns}`);
    return s;
  };

  it("lab - plan of a complete lab is empty", () => {
    const plans = planLab(specs, new Map(specs.map((s) => [s.netns, complete(s)])));
    const steps = describePlan(plans);
    expect(steps, `steps: got ${steps.length} (${steps.slice(0, 3).join("; ")}), want none`).toEqual([]);
  });

  it("lab - plan of empty namespaces creates each veth pair once", () => {
    const plans = planLab(specs, new Map(specs.map((s) => [s.netns, emptyObservation(s.netns, true)])));
    const creates = plans.flatMap((p) => p.create.map((c) => `${p.netns}: ${c}`));
    const veths = creates.filter((c) => c.includes("type veth"));
    // inet: 4 gateways + ctl; each gateway: one per host.
    expect(veths.length, `veth creations: got ${veths.length}, want 12`).toBe(12);
    expect(creates, "gw-aws bridge").toContain("weft-gw-aws: link add br0 mtu 1500 type bridge");
    expect(creates, "inet → gw-aws pair").toContain(
      "weft-inet: link add to-aws mtu 1500 type veth peer name wan0 mtu 1500 netns weft-gw-aws",
    );
    const aws1 = plans.find((p) => p.netns === "weft-aws-1");
    expect(aws1?.create, "aws-1 creates nothing (its gateway does)").toEqual([]);
    expect(aws1?.configure, "aws-1 configure").toEqual([
      "link set dev lo up",
      "link set dev eth0 up",
      "addr add 10.10.0.11/16 dev eth0",
      "route add default via 10.10.0.1",
    ]);
    const gw = plans.find((p) => p.netns === "weft-gw-aws");
    expect(gw?.configure, "gw-aws enslaves host ports").toContain("link set dev lan-aws-1 master br0 up");
    expect(gw?.rules.length, `gw-aws rules: got ${gw?.rules.length}, want 6`).toBe(6);
  });

  it("lab - plan completes a half-built namespace with only what is missing", () => {
    const spec = find("weft-gw-gcp");
    const obs = complete(spec);
    const port = obs.links.get("lan-gcp-2");
    if (port) obs.links.set("lan-gcp-2", { ...port, up: false, master: undefined });
    obs.routes = [];
    const first = spec.rules[0];
    if (first) obs.rules.delete(ruleKey(first));
    obs.sysctls.set("net.ipv4.ip_forward", "0");
    const plan = planNamespace(spec, obs);
    expect(plan.create, "create").toEqual([]);
    expect(plan.configure, "configure").toEqual(["link set dev lan-gcp-2 master br0 up", "route add default via 198.19.3.1"]);
    expect(plan.sysctls.map((s) => s.key), "sysctls").toEqual(["net.ipv4.ip_forward"]);
    expect(plan.rules, "rules").toEqual([first]);
  });

  it("lab - plan fixes a wrong MTU on an existing link", () => {
    const spec = find("weft-azure-1");
    const obs = complete(spec);
    const eth0 = obs.links.get("eth0");
    if (eth0) obs.links.set("eth0", { ...eth0, mtu: 9000 });
    expect(planNamespace(spec, obs).configure, "configure").toEqual(["link set dev eth0 mtu 1500"]);
  });

  it("lab - plan skips optional sysctls the kernel lacks but writes required ones", () => {
    const spec = find("weft-gw-aws");
    const obs = complete(spec);
    obs.sysctls.delete("net.bridge.bridge-nf-call-iptables");
    obs.sysctls.delete("net.ipv4.conf.br0.send_redirects");
    const got = planNamespace(spec, obs).sysctls.map((s) => s.key);
    expect(got, `sysctls: got ${got}, want only br0.send_redirects`).toEqual(["net.ipv4.conf.br0.send_redirects"]);
  });

  it("lab - plan classifies existing namespaces it did not record as conflicts", () => {
    const got = classifyNamespaces({
      desired: ["w-inet", "w-ctl", "w-aws-1"],
      existing: new Set(["w-inet", "w-ctl", "other"]),
      recorded: new Set(["w-inet"]),
    });
    expect(got, "classification").toEqual({ toCreate: ["w-aws-1"], conflicts: ["w-ctl"] });
  });

  it("lab - plan renders rules as iptables-restore input per table", () => {
    const got = restoreScript(find("weft-gw-onprem").rules);
    const want = [
      "*nat",
      "-A POSTROUTING -s 192.168.50.0/24 -o wan0 -j MASQUERADE",
      "COMMIT",
      "*filter",
      "-A FORWARD -i wan0 -m conntrack --ctstate NEW,INVALID -j DROP",
      "-A INPUT -i wan0 -m conntrack --ctstate NEW,INVALID -j DROP",
      "COMMIT",
      "",
    ].join("\n");
    expect(got, `restore script: got\n${got}\nwant\n${want}`).toBe(want);
  });
});
