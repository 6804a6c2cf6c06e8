/**
 * What leaving the overlay removes, in order: the WireGuard interface and its wireguard-go socket,
 * the VXLAN device, each workload's veth (by the name plumbing gives it), the gateway's nat chain,
 * the pins. (Removing them for real is tested on an installed agent: test/e2e/install.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { teardownSteps } from "./teardown.js";
import { hostInterfaceFor } from "./workloads/plumbing.js";

describe("teardown", () => {
  it("teardown - steps name every device, the socket, the chain and the pins, workloads once each", () => {
    const steps = teardownSteps({ interfaceName: "weft0", vxlanInterface: "weft-vxlan", pinDir: "/sys/fs/bpf/weft", workloads: ["web", "db", "web"] });
    expect(steps).toEqual([
      { kind: "link", name: "weft0", what: "WireGuard interface" },
      { kind: "uapi-socket", path: "/var/run/wireguard/weft0.sock" },
      { kind: "link", name: "weft-vxlan", what: "VXLAN device" },
      { kind: "link", name: hostInterfaceFor("db"), what: "workload db's veth" },
      { kind: "link", name: hostInterfaceFor("web"), what: "workload web's veth" },
      { kind: "snat-chain", chain: "WEFT-SNAT" },
      { kind: "pins", dir: "/sys/fs/bpf/weft" },
    ]);
  });
});
