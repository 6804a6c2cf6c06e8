/** Unit tests of node-name resolution, host directories and the state file path. */
import { describe, expect, it } from "vitest";
import { LabNotUpError, UnknownHostError } from "./errors.js";
import { labNode } from "./exec.js";
import { labNodes, resolveHost } from "./hosts.js";
import { hostDir, statePath } from "./state.js";
import { labTopology } from "./topology.js";

describe("lab - hosts", () => {
  const t = labTopology({ prefix: "wt" });

  it("lab - hosts resolve short names and namespace names", () => {
    expect(resolveHost(t, "aws-1"), "aws-1").toEqual({ name: "aws-1", kind: "host", netns: "wt-aws-1" });
    expect(resolveHost(t, "wt-aws-1").name, "by netns").toBe("aws-1");
    expect(resolveHost(t, "ctl"), "ctl").toEqual({ name: "ctl", kind: "controller", netns: "wt-ctl" });
    expect(resolveHost(t, "inet").kind, "inet").toBe("inet");
    expect(resolveHost(t, "gw-onprem").netns, "gw-onprem").toBe("wt-gw-onprem");
    expect(resolveHost(t, "onprem-1-ledger"), "a workload").toEqual({ name: "onprem-1-ledger", kind: "workload", netns: "wt-onprem-1-ledger" });
    expect(labNodes(t).length, "nodes: 7 hosts + ctl + inet + 4 gateways + 7 workloads").toBe(20);
  });

  it("lab - hosts unknown name throws UnknownHostError listing valid hosts", () => {
    let err: unknown;
    try {
      resolveHost(t, "aws-9");
    } catch (e) {
      err = e;
    }
    expect(err, "error class").toBeInstanceOf(UnknownHostError);
    const e = err as UnknownHostError;
    expect(e.host, "host").toBe("aws-9");
    expect(e.validHosts, "valid hosts").toContain("aws-1");
    expect(e.validHosts, "valid hosts").toContain("ctl");
    expect(e.message, "message names valid hosts").toContain("onprem-1");
  });

  it("lab - hosts labNode of a lab that is down throws LabNotUpError", () => {
    expect(() => labNode({ prefix: "wtnone" }, "aws-1"), "want LabNotUpError").toThrow(LabNotUpError);
    expect(() => labNode({ prefix: "wtnone" }, "nope"), "want UnknownHostError").toThrow(UnknownHostError);
  });

  it("lab - hosts directories and state path follow the options", () => {
    expect(hostDir({ prefix: "wt", stateRoot: "/tmp/x" }, "aws-1"), "hostDir").toBe("/tmp/x/wt/hosts/aws-1");
    expect(hostDir({}, "ctl"), "hostDir default").toBe("/var/lib/weft-lab/weft/hosts/ctl");
    expect(statePath({ prefix: "wt" }), "statePath").toBe("/run/weft-lab/wt.json");
    expect(() => hostDir({}, "../etc"), "hostDir rejects unknown names").toThrow(UnknownHostError);
  });
});
