/**
 * MSS clamping for TCP this host forwards through the overlay (a gateway's site machines, the
 * workloads): a SYN leaving through the WireGuard interface is clamped to that interface's path
 * MTU, and one arriving from it to the interface's MTU less 40, so two machines that each believe
 * in a 1500-byte network agree on segments the smallest tunnel carries whole. Hosts' own
 * connections need none: their MSS already comes from the interface's MTU.
 *
 * Rules live in one mangle chain, `WEFT-MSS`, jumped to from FORWARD; the chain is rewritten
 * whenever the interface or its MTU changes, and nothing else is touched. It is written in one
 * `iptables-restore --noflush` transaction (declaring the chain creates it or empties it, then its
 * rules, and the jump when FORWARD lacks it): two commands where `-S`, `-N`, `-C`, `-I`, `-F` and
 * an `-A` per rule took seven on every agent's start, and no moment with the chain empty.
 */
import type { CommandRunner } from "../exec/runner.js";

export const MSS_CHAIN = "WEFT-MSS";

/** The chain's rules for an interface and its MTU (pure): each as iptables arguments after `-A WEFT-MSS`. */
export function mssRules(iface: string, mtu: number): string[][] {
  const mss = mtu - 40;
  const syn = ["-p", "tcp", "--tcp-flags", "SYN,RST", "SYN"];
  return [
    ["-o", iface, ...syn, "-j", "TCPMSS", "--clamp-mss-to-pmtu"],
    ["-i", iface, ...syn, "-m", "tcpmss", "--mss", `${mss + 1}:65535`, "-j", "TCPMSS", "--set-mss", String(mss)],
  ];
}

/** The `iptables-restore --noflush` input that writes the chain (pure); with the FORWARD jump when `addJump`. */
export function mssRestoreInput(iface: string, mtu: number, addJump: boolean): string {
  const lines = ["*mangle", `:${MSS_CHAIN} - [0:0]`, ...mssRules(iface, mtu).map((rule) => ["-A", MSS_CHAIN, ...rule].join(" "))];
  if (addJump) lines.push(`-I FORWARD 1 -j ${MSS_CHAIN}`);
  return [...lines, "COMMIT", ""].join("\n");
}

/** Writes the chain for `iface` at `mtu` (creating it and its FORWARD jump when missing). */
export async function applyMssClamp(run: CommandRunner, iface: string, mtu: number): Promise<void> {
  const jumped = await run.run(["iptables", "-w", "5", "-t", "mangle", "-C", "FORWARD", "-j", MSS_CHAIN]).then(
    () => true,
    () => false,
  );
  await run.run(["iptables-restore", "-w", "5", "--noflush"], { input: mssRestoreInput(iface, mtu, !jumped) });
}
