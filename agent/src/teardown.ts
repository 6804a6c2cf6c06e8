/**
 * Leaving the overlay for good (`weft down`, package removal): the inverse of everything the agent
 * sets up on the host and deliberately keeps when it merely stops (fail static). Run with the
 * agent stopped. In order:
 *   - the WireGuard interface (its routes, addresses and tc programs go with it; a userspace
 *     wireguard-go exits when its TUN device is deleted, and its UAPI socket is removed),
 *   - the VXLAN device and each workload's veth (both ends, their routes and tc programs),
 *   - the gateway's `WEFT-SNAT` nat chain and its jump from POSTROUTING,
 *   - the pinned eBPF programs and maps (the pin directory, only when it is on a bpf filesystem).
 * Then it looks again and reports anything still there. IPv4 forwarding is left as it is: other
 * software may rely on it, and whether it was on before the agent is not known.
 * `teardownSteps` decides (pure); `teardown` acts.
 */
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { bpffsMounts } from "./datapath/bpffs.js";
import { SNAT_CHAIN } from "./net/gateway.js";
import { linkExists } from "./net/links.js";
import { UAPI_SOCKET_DIR } from "./wireguard/userspace.js";
import { createCommandRunner, type CommandRunner } from "./exec/runner.js";
import { hostInterfaceFor } from "./workloads/plumbing.js";

export interface TeardownInput {
  /** The WireGuard interface (`interface.name`). */
  interfaceName: string;
  /** `datapath.vxlanInterface`. */
  vxlanInterface: string;
  /** `datapath.pinDir`. */
  pinDir: string;
  /** Names of every workload the node may have plumbed (config and last state). */
  workloads: readonly string[];
}

export type TeardownStep =
  | { kind: "link"; name: string; what: string }
  | { kind: "uapi-socket"; path: string }
  | { kind: "snat-chain"; chain: string }
  | { kind: "pins"; dir: string };

export function teardownSteps(input: TeardownInput): TeardownStep[] {
  const workloads = [...new Set(input.workloads)].sort();
  return [
    { kind: "link", name: input.interfaceName, what: "WireGuard interface" },
    { kind: "uapi-socket", path: join(UAPI_SOCKET_DIR, `${input.interfaceName}.sock`) },
    { kind: "link", name: input.vxlanInterface, what: "VXLAN device" },
    ...workloads.map((w): TeardownStep => ({ kind: "link", name: hostInterfaceFor(w), what: `workload ${w}'s veth` })),
    { kind: "snat-chain", chain: SNAT_CHAIN },
    { kind: "pins", dir: input.pinDir },
  ];
}

export interface TeardownReport {
  /** What was there and was removed, one line each. */
  removed: string[];
  /** What is still there afterwards (empty on success), one line each. */
  remaining: string[];
}

/** Removes everything `teardownSteps` names that exists; never throws for something already gone. */
export async function teardown(input: TeardownInput, run: CommandRunner = createCommandRunner()): Promise<TeardownReport> {
  const removed: string[] = [];
  const remaining: string[] = [];
  const steps = teardownSteps(input);
  for (const step of steps) {
    try {
      if (await present(step, run)) {
        await remove(step, run);
        removed.push(describe(step));
      }
    } catch (err) {
      remaining.push(`${describe(step)}: ${(err as Error).message}`);
    }
  }
  for (const step of steps) {
    if (remaining.some((r) => r.startsWith(describe(step)))) continue;
    if (await present(step, run).catch(() => true)) remaining.push(`${describe(step)}: still there`);
  }
  return { removed, remaining };
}

function describe(step: TeardownStep): string {
  switch (step.kind) {
    case "link":
      return `${step.what} ${step.name}`;
    case "uapi-socket":
      return `wireguard-go socket ${step.path}`;
    case "snat-chain":
      return `iptables nat chain ${step.chain}`;
    case "pins":
      return `eBPF pins in ${step.dir}`;
  }
}

async function present(step: TeardownStep, run: CommandRunner): Promise<boolean> {
  switch (step.kind) {
    case "link":
      return linkExists(run, step.name);
    case "uapi-socket":
      return exists(step.path);
    case "snat-chain":
      return run.run(["iptables", "-w", "5", "-t", "nat", "-S", step.chain]).then(
        () => true,
        () => false,
      );
    case "pins":
      return exists(step.dir);
  }
}

async function remove(step: TeardownStep, run: CommandRunner): Promise<void> {
  switch (step.kind) {
    case "link":
      await run.run(["ip", "link", "del", "dev", step.name]);
      return;
    case "uapi-socket":
      // wireguard-go removes it when it exits with its device; give it a moment first.
      for (let i = 0; i < 20 && (await exists(step.path)); i++) await new Promise((r) => setTimeout(r, 50));
      await rm(step.path, { force: true });
      return;
    case "snat-chain": {
      const nat = (...args: string[]) => run.run(["iptables", "-w", "5", "-t", "nat", ...args]);
      // The jump may have been added more than once by hand; remove every copy.
      for (let i = 0; i < 16; i++) {
        const gone = await nat("-D", "POSTROUTING", "-j", step.chain).then(
          () => false,
          () => true,
        );
        if (gone) break;
      }
      await nat("-F", step.chain);
      await nat("-X", step.chain);
      return;
    }
    case "pins": {
      const mounts = await bpffsMounts();
      if (!mounts.some((m) => step.dir === m || step.dir.startsWith(`${m}/`))) {
        throw new Error(`not removed: ${step.dir} is not on a bpf filesystem (mounted at ${mounts.join(", ") || "nowhere"}), so it cannot be the agent's pins`);
      }
      if (mounts.includes(step.dir)) throw new Error(`not removed: ${step.dir} is a bpf filesystem's mount point itself, not a pin directory in one`);
      await rm(step.dir, { recursive: true, force: true });
      return;
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
