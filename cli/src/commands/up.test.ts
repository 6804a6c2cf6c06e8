/**
 * `weft up` and `weft down` decisions: the config written from flags over the existing file,
 * when a node counts as online, and what `down` tears down when the config is broken.
 */
import type { AgentState, AgentStatus } from "@weft/agent";
import { describe, expect, it } from "vitest";
import { downPlan } from "./down.js";
import { onlineState, upConfig } from "./up.js";

const HASH = `sha256:${"a".repeat(64)}`;

describe("weft up", () => {
  it("up - flags override the file's keys and keep the rest; a new key file replaces a key in the file", () => {
    const existing = { controllerUrl: "https://old:8080", controllerCaHash: HASH, joinKey: "weft_old", site: "lan", interface: { mtu: 1380, name: "wg9" } };
    const got = upConfig(existing, { controller: "https://new:8080", name: "web-1", listenPort: "51821", publicEndpoint: "198.51.100.7:51821" }, "/etc/weft/join-key");
    expect(got).toEqual({
      controllerUrl: "https://new:8080",
      controllerCaHash: HASH,
      site: "lan",
      name: "web-1",
      interface: { mtu: 1380, name: "wg9", listenPort: 51821 },
      endpoints: { public: "198.51.100.7:51821" },
      joinKeyFile: "/etc/weft/join-key",
    });
  });

  it("up - --cloud and --metadata-endpoint become the cloud section; without a key file a key in the file stays", () => {
    expect(upConfig({ joinKey: "weft_x" }, { cloud: "gcp", metadataEndpoint: "http://169.254.169.254" }, undefined)).toEqual({
      joinKey: "weft_x",
      cloud: { provider: "gcp", metadataEndpoint: "http://169.254.169.254" },
    });
    expect(() => upConfig({}, { cloud: "ibm" }, undefined), "unknown cloud").toThrow(/--cloud ibm: want one of aws, azure, gcp/);
  });

  it("up - online means enrolled, connected, synced, and written by an agent started now", () => {
    const since = Date.parse("2026-12-05T10:00:00Z");
    const state = { nodeId: "n1", overlayAddress: "100.64.0.2" } as AgentState;
    const status = (patch: Partial<AgentStatus>): AgentStatus => ({ nodeId: "n1", interface: "weft0", nats: "connected", stale: false, appliedRevision: 3, peers: 2, policyRevision: -1, policyEntries: 0, updatedAt: "2026-12-05T10:00:01Z", ...patch });
    const cases: [string, AgentState | undefined, AgentStatus | undefined, boolean, RegExp][] = [
      ["not enrolled", undefined, undefined, false, /enrollment/],
      ["a status from before this start", state, status({ updatedAt: "2026-12-05T09:59:59Z" }), false, /to start/],
      ["connecting", state, status({ nats: "connecting" }), false, /NATS \(connecting\)/],
      ["stale", state, status({ stale: true }), false, /first peer set/],
      ["removed by the controller", state, status({ removed: true }), false, /removed this node/],
      ["online", state, status({}), true, /^$/],
    ];
    for (const [what, st, su, online, why] of cases) {
      const got = onlineState(st, su, since);
      expect(got.online, `${what}: online`).toBe(online);
      expect(got.waitingFor, `${what}: waiting for`).toMatch(why);
    }
  });
});

describe("weft down", () => {
  it("down - tears down the names the config gives, and the defaults when the config is broken", () => {
    const custom = downPlan({ interface: { name: "wg7" }, datapath: { pinDir: "/sys/fs/bpf/w7", vxlanInterface: "vx7" }, stateDir: "/srv/weft", workloads: [{ name: "web", namespace: "shop", serviceAccount: "web", netns: "web-ns" }] });
    expect(custom).toEqual({ teardown: { interfaceName: "wg7", vxlanInterface: "vx7", pinDir: "/sys/fs/bpf/w7" }, stateDir: "/srv/weft", workloads: ["web"], configProblem: undefined });
    const broken = downPlan({ interface: { name: "x".repeat(40) } });
    expect(broken.teardown, "defaults").toEqual({ interfaceName: "weft0", vxlanInterface: "weft-vxlan", pinDir: "/sys/fs/bpf/weft" });
    expect(broken.stateDir).toBe("/var/lib/weft/agent");
    expect(broken.configProblem, "the problem is reported").toMatch(/interface\.name/);
  });
});
