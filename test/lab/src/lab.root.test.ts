/**
 * Builds a real lab (prefix `wtl`, never the demo's `weft`) and checks the behaviours the rest of
 * Weft relies on: idempotent up, same-site private traffic, cross-cloud traffic through 1:1 NAT,
 * on-prem behind masquerade, the controller reachable from everywhere, and a clean down.
 * Needs root; skipped otherwise.
 */
import { type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LabConflictError, LabNotUpError, UnknownHostError } from "./errors.js";
import { hostCgroup, labCgroupRoot } from "./cgroups.js";
import { labExec, spawnInHost } from "./exec.js";
import { labDown, namespacePids } from "./down.js";
import { listNamespaces } from "./observe.js";
import { echoProbe, startEchoServer, type EchoResult, type EchoServer } from "./probe.js";
import { run } from "./run.js";
import { statePath } from "./state.js";
import { agentStatePath, labStatus } from "./status.js";
import { labUp, type LabUpResult } from "./up.js";

const isRoot = process.getuid?.() === 0;
const PORT = 7000;

async function prefixed(prefix: string): Promise<string[]> {
  return (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
}

function sourceOf(r: EchoResult): string {
  return r.ok ? r.from.address : `no reply (${r.error})`;
}

describe.skipIf(!isRoot)("lab - root integration (needs root; run as root to enable)", () => {
  let stateRoot = "";
  let opts = { prefix: "wtl", stateRoot: "" };
  let first: LabUpResult | undefined;
  const servers: EchoServer[] = [];

  beforeAll(async () => {
    stateRoot = await mkdtemp(join(tmpdir(), "weft-lab-root-"));
    opts = { prefix: "wtl", stateRoot };
    await labDown(opts); // a previous crashed run
    first = await labUp(opts);
    for (const host of ["aws-1", "aws-2", "azure-1", "onprem-1", "ctl"]) {
      servers.push(await startEchoServer(opts, host, { port: PORT }));
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(servers.map((s) => s.close()));
    await labDown(opts);
    await rm(stateRoot, { recursive: true, force: true });
    await run(["ip", "netns", "del", "wtc-inet"], { okExitCodes: [0, 1] });
  }, 60_000);

  it("lab - up creates every namespace with lo up and veths at MTU 1500", async () => {
    expect(first?.created.length, `created: got ${first?.created.length}, want 20 (13 + 7 workloads)`).toBe(20);
    expect((await prefixed("wtl")).sort(), "namespaces").toEqual([...(first?.created ?? [])].sort());
    for (const netns of ["wtl-inet", "wtl-gw-aws", "wtl-onprem-1"]) {
      const { stdout } = await run(["ip", "-n", netns, "-j", "link", "show"]);
      const links = JSON.parse(stdout) as Array<{ ifname: string; mtu: number; flags: string[] }>;
      for (const l of links) {
        expect(l.flags.includes("UP"), `${netns} ${l.ifname}: want UP`).toBe(true);
        if (l.ifname !== "lo") expect(l.mtu, `${netns} ${l.ifname} mtu`).toBe(1500);
      }
    }
  });

  it("lab - up twice changes nothing the second time", async () => {
    const before = await readFile(statePath(opts), "utf8");
    const again = await labUp(opts);
    expect(again.changes, `second up changes: got ${again.changes.join("; ")}, want none`).toEqual([]);
    expect(again.created, "second up created").toEqual([]);
    expect(await readFile(statePath(opts), "utf8"), "state file unchanged").toBe(before);
  });

  it("lab - same-site hosts talk over the bridge with private addresses", async () => {
    const r = await echoProbe(opts, "aws-1", { address: "10.10.0.12", port: PORT });
    expect(sourceOf(r), `aws-2 saw source: got ${sourceOf(r)}, want 10.10.0.11`).toBe("10.10.0.11");
  });

  it("lab - cross-cloud traffic arrives from the sender's public address (UDP and TCP)", async () => {
    for (const protocol of ["udp", "tcp"] as const) {
      const r = await echoProbe(opts, "aws-1", { address: "198.18.2.11", port: PORT, protocol });
      expect(sourceOf(r), `${protocol}: azure-1 saw source: got ${sourceOf(r)}, want 198.18.1.11`).toBe("198.18.1.11");
    }
    const back = await echoProbe(opts, "azure-1", { address: "198.18.1.11", port: PORT });
    expect(sourceOf(back), `aws-1 saw source: got ${sourceOf(back)}, want 198.18.2.11`).toBe("198.18.2.11");
  });

  it("lab - a host reaching a same-site public address is hairpinned from its public address", async () => {
    const r = await echoProbe(opts, "aws-1", { address: "198.18.1.12", port: PORT });
    expect(sourceOf(r), `aws-2 saw source: got ${sourceOf(r)}, want 198.18.1.11`).toBe("198.18.1.11");
  });

  it("lab - on-prem reaches a cloud public address through masquerade (UDP replies return)", async () => {
    const r = await echoProbe(opts, "onprem-1", { address: "198.18.1.11", port: PORT });
    expect(sourceOf(r), `aws-1 saw source: got ${sourceOf(r)}, want 198.19.4.2 (gw-onprem WAN)`).toBe("198.19.4.2");
  });

  it("lab - on-prem cannot be reached unsolicited", async () => {
    const probes = await Promise.all([
      echoProbe(opts, "aws-1", { address: "192.168.50.11", port: PORT, timeoutMs: 800 }),
      echoProbe(opts, "aws-1", { address: "192.168.50.11", port: PORT, protocol: "tcp", timeoutMs: 800 }),
      echoProbe(opts, "aws-1", { address: "198.19.4.2", port: PORT, timeoutMs: 800 }),
      echoProbe(opts, "ctl", { address: "192.168.50.11", port: PORT, timeoutMs: 800 }),
    ]);
    for (const r of probes) expect(r.ok, `probe to onprem: got ${JSON.stringify(r)}, want no reply`).toBe(false);
  });

  it("lab - every host reaches the controller", async () => {
    const hosts = ["aws-1", "aws-2", "azure-1", "azure-2", "gcp-1", "gcp-2", "onprem-1"];
    const want = ["198.18.1.11", "198.18.1.12", "198.18.2.11", "198.18.2.12", "198.18.3.11", "198.18.3.12", "198.19.4.2"];
    const got = await Promise.all(
      hosts.map(async (h) => sourceOf(await echoProbe(opts, h, { address: "198.19.0.2", port: PORT, protocol: "tcp" }))),
    );
    expect(got, `ctl saw sources: got ${got}, want ${want}`).toEqual(want);
  });

  it("lab - status lists 7 hosts up with the agents' overlay addresses", async () => {
    const file = agentStatePath(opts, "azure-2");
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify({ overlayAddress: "100.96.1.2" }));
    const got = await labStatus(opts);
    expect(got.length, `hosts: got ${got.length}, want 7`).toBe(7);
    const down = got.filter((h) => !h.up).map((h) => h.name);
    expect(down, `hosts not up: got ${down}, want none`).toEqual([]);
    expect(got.find((h) => h.name === "azure-2")?.overlay, "azure-2 overlay").toBe("100.96.1.2");
    expect(got.find((h) => h.name === "aws-1")?.overlay, "aws-1 overlay").toBeNull();
  });

  it("lab - exec runs in the host namespace and rejects unknown hosts", async () => {
    const r = await labExec(opts, "gcp-1", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    expect(r.exitCode, `exit: got ${r.exitCode} (${r.stderr}), want 0`).toBe(0);
    expect(r.stdout, "gcp-1 eth0").toContain("10.30.0.11/16");
    const env = await labExec(opts, "ctl", [process.execPath, "-e", "process.stdout.write(process.env.WEFT_X ?? '')"], {
      env: { WEFT_X: "yes" },
    });
    expect(env.stdout, "env passed through").toBe("yes");
    const fail = await labExec(opts, "inet", ["ip", "link", "show", "dev", "nope0"]);
    expect(fail.exitCode, "non-zero exit is returned").toBe(1);
    await expect(labExec(opts, "aws-7", ["true"]), "unknown host").rejects.toBeInstanceOf(UnknownHostError);
    await expect(labExec({ prefix: "wtnone" }, "aws-1", ["true"]), "lab down").rejects.toBeInstanceOf(LabNotUpError);
  });

  it("lab - a command in a host or one of its workloads runs in the host's cgroup (where its agent balances services); elsewhere in none", async () => {
    const cgroupOf = async (node: string, o: { cgroup?: boolean } = {}) =>
      (await labExec(opts, node, ["cat", "/proc/self/cgroup"], o)).stdout.split("\n").find((l) => l.startsWith("0::"))?.slice(3);
    const rel = (host: string) => hostCgroup(opts, host)!.slice(hostCgroup(opts, host)!.indexOf("/weft-lab/"));
    expect(await cgroupOf("gcp-1"), "a host").toBe(rel("gcp-1"));
    expect(await cgroupOf("gcp-1-web"), "its workload: the host's cgroup").toBe(rel("gcp-1"));
    expect(await cgroupOf("gcp-1", { cgroup: false }), "cgroup: false").not.toBe(rel("gcp-1"));
    expect(await cgroupOf("ctl"), "the controller's namespace").not.toContain("/weft-lab/");
  });

  it("lab - up completes a half-built lab", async () => {
    await run(["ip", "netns", "del", "wtl-gcp-2"]);
    await run(["ip", "netns", "exec", "wtl-gw-azure", "iptables", "-t", "nat", "-F", "PREROUTING"]);
    const r = await labUp(opts);
    expect(r.created, "recreated namespaces").toEqual(["wtl-gcp-2"]);
    expect(r.changes, "restores azure-1's DNAT").toContain(
      "wtl-gw-azure: iptables -t nat -A PREROUTING -d 198.18.2.11/32 -j DNAT --to-destination 10.20.0.11",
    );
    const toCtl = await echoProbe(opts, "gcp-2", { address: "198.19.0.2", port: PORT, protocol: "tcp" });
    expect(sourceOf(toCtl), "gcp-2 → ctl source").toBe("198.18.3.12");
    const toAzure = await echoProbe(opts, "aws-2", { address: "198.18.2.11", port: PORT });
    expect(sourceOf(toAzure), "aws-2 → azure-1 source").toBe("198.18.1.12");
    const again = await labUp(opts);
    expect(again.changes, `third up changes: got ${again.changes.join("; ")}, want none`).toEqual([]);
  });

  it("lab - up refuses namespaces it did not create and down leaves them", async () => {
    await run(["ip", "netns", "add", "wtc-inet"]);
    const c = { prefix: "wtc", stateRoot };
    await expect(labUp(c), "foreign wtc-inet").rejects.toBeInstanceOf(LabConflictError);
    expect(existsSync(statePath(c)), "no state file written").toBe(false);
    const down = await labDown(c);
    expect(down.foreign, "down reports the foreign namespace").toEqual(["wtc-inet"]);
    expect(await prefixed("wtc"), "foreign namespace left alone").toEqual(["wtc-inet"]);
    await run(["ip", "netns", "del", "wtc-inet"]);
  });

  it("lab - down stops processes and removes every namespace it made; twice is fine", async () => {
    const sleeper: ChildProcess = spawnInHost(opts, "aws-1", ["sleep", "600"], { stdio: "ignore" });
    const exited = once(sleeper, "exit");
    // The child is in the namespace only once `ip netns exec` has entered it (moments later on a busy machine).
    for (let i = 0; i < 100 && !(await namespacePids("wtl-aws-1")).includes(sleeper.pid!); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await namespacePids("wtl-aws-1"), "the sleeper runs in wtl-aws-1").toContain(sleeper.pid);
    const hostDirs = join(stateRoot, "wtl");
    expect(existsSync(hostDirs), "host dirs exist while up").toBe(true);
    const r = await labDown(opts);
    expect(r.removed.length, `removed: got ${r.removed.length}, want 20 (13 + 7 workloads)`).toBe(20);
    expect(r.killed["wtl-aws-1"], "stopped the sleeper").toContain(sleeper.pid);
    await exited;
    expect(await prefixed("wtl"), "namespaces left").toEqual([]);
    expect(existsSync(statePath(opts)), "state file removed").toBe(false);
    expect(existsSync(hostDirs), "host dirs removed").toBe(false);
    expect(existsSync(labCgroupRoot(opts)!), "host cgroups removed").toBe(false);
    const again = await labDown(opts);
    expect(again.removed, "second down").toEqual([]);
  });
});
