/**
 * Root integration: a workload plumbed from a scratch "host" namespace into a scratch workload
 * namespace, the way the agent does it (workloads/plumbing.ts): the veth, the gateway address,
 * the routes both ways; plumbing again repairs a stale address and a stale route without
 * recreating the veth. Both namespaces are removed afterwards, also on failure.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCommandRunner, type CommandRunner } from "../exec/runner.js";
import { WORKLOAD_GATEWAY, hostInterfaceFor, plumbWorkload } from "./plumbing.js";

const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const HOST_NS = "weft-plumbt-h";
const WORKLOAD_NS = "weft-plumbt-w";
const WORKLOAD = { name: "web", netns: WORKLOAD_NS, address: "100.80.3.7" };
const OPTS = { overlayAddress: "100.64.0.3", mtu: 1420 };

const ipJson = async (ns: string, ...argv: string[]) => JSON.parse((await exec("ip", ["-n", ns, "-json", ...argv])).stdout) as Record<string, unknown>[];

/** The host namespace's runner, counting the commands it runs. */
function countingRunner(): CommandRunner & { commands: string[][] } {
  const inner = createCommandRunner({ netns: HOST_NS });
  const commands: string[][] = [];
  return { netns: HOST_NS, commands, run: (argv, options) => (commands.push([...argv]), inner.run(argv, options)) };
}

describe.skipIf(!isRoot)("workload plumbing (root)", () => {
  const host = hostInterfaceFor(WORKLOAD.name);
  beforeAll(async () => {
    for (const ns of [HOST_NS, WORKLOAD_NS]) {
      await exec("ip", ["netns", "del", ns]).catch(() => undefined);
      await exec("ip", ["netns", "add", ns]);
    }
    // The node's overlay address, the source of the host's route to the workload (on the WireGuard interface in an agent).
    await exec("ip", ["-n", HOST_NS, "addr", "add", `${OPTS.overlayAddress}/32`, "dev", "lo"]);
    await exec("ip", ["-n", HOST_NS, "link", "set", "lo", "up"]);
  });
  afterAll(async () => {
    for (const ns of [HOST_NS, WORKLOAD_NS]) await exec("ip", ["netns", "del", ns]).catch(() => undefined);
  });

  const state = async () => {
    const [link] = await ipJson(HOST_NS, "link", "show", "dev", host);
    const [hostAddr] = await ipJson(HOST_NS, "-4", "addr", "show", "dev", host);
    const hostRoutes = await ipJson(HOST_NS, "-4", "route", "show", "dev", host);
    const [eth0] = await ipJson(WORKLOAD_NS, "-4", "addr", "show", "dev", "eth0");
    const [lo] = await ipJson(WORKLOAD_NS, "link", "show", "dev", "lo");
    const routes = await ipJson(WORKLOAD_NS, "-4", "route", "show");
    return {
      host: { mtu: link?.mtu, up: (link?.flags as string[]).includes("UP"), addresses: (hostAddr?.addr_info as { local: string }[]).map((a) => a.local) },
      hostRoutes: hostRoutes.map((r) => `${String(r.dst)} src ${String(r.prefsrc)}`).sort(),
      workload: { mtu: eth0?.mtu, up: (eth0?.flags as string[]).includes("UP"), addresses: (eth0?.addr_info as { local: string }[]).map((a) => a.local), lo: (lo?.flags as string[]).includes("UP") },
      workloadRoutes: routes.map((r) => `${String(r.dst)} via ${String(r.gateway ?? "-")} ${String(r.scope ?? "")}`).sort(),
    };
  };
  const want = {
    host: { mtu: 1420, up: true, addresses: [WORKLOAD_GATEWAY] },
    hostRoutes: [`${WORKLOAD.address} src ${OPTS.overlayAddress}`],
    workload: { mtu: 1420, up: true, addresses: [WORKLOAD.address], lo: true },
    workloadRoutes: [`${WORKLOAD_GATEWAY} via - link`, `default via ${WORKLOAD_GATEWAY} `],
  };

  it("plumbing - a new workload gets its veth, gateway and routes both ways, in seven commands", async () => {
    const run = countingRunner();
    expect(await plumbWorkload(run, WORKLOAD, OPTS), "the host end").toBe(host);
    expect(await state()).toEqual(want);
    expect(run.commands.length, `commands run:\n${run.commands.map((c) => c.join(" ")).join("\n")}`).toBeLessThanOrEqual(7);
  });

  it("plumbing - plumbing again removes a stale address and route and keeps the veth", async () => {
    const [before] = await ipJson(HOST_NS, "link", "show", "dev", host);
    await exec("ip", ["-n", WORKLOAD_NS, "addr", "add", "100.80.9.9/32", "dev", "eth0"]);
    await exec("ip", ["-n", HOST_NS, "route", "add", "100.80.9.9/32", "dev", host]);
    await exec("ip", ["-n", WORKLOAD_NS, "route", "del", "default"]);
    const run = countingRunner();
    await plumbWorkload(run, WORKLOAD, OPTS);
    expect(await state()).toEqual(want);
    const [after] = await ipJson(HOST_NS, "link", "show", "dev", host);
    expect(after?.ifindex, "the same veth").toBe(before?.ifindex);
  });
});
