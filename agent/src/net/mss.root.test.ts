/**
 * Root integration: MSS clamping in a scratch network namespace. The first apply creates WEFT-MSS
 * with its two rules and the FORWARD jump ahead of other rules; a changed MTU or interface rewrites
 * the chain; an agent restart (the chain and jump already there) adds no second jump. Two commands
 * per apply (`-C` of the jump, one `iptables-restore`). Nothing is touched outside the namespace,
 * which is removed afterwards.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCommandRunner, type CommandRunner } from "../exec/runner.js";
import { findExecutableSync } from "../exec/testing.js";
import { MSS_CHAIN, applyMssClamp } from "./mss.js";

const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const haveTools = findExecutableSync("iptables") !== undefined && findExecutableSync("iptables-restore") !== undefined;
const NS = "weft-msst";

const inNs = async (...argv: string[]) => (await exec("ip", ["netns", "exec", NS, ...argv])).stdout;
const rules = async (chain: string) =>
  (await inNs("iptables", "-t", "mangle", "-S", chain))
    .split("\n")
    .filter((l) => l.startsWith(`-A ${chain} `))
    .map((l) => l.slice(`-A ${chain} `.length));

/** The namespace's runner, counting the commands it runs. */
function countingRunner(): CommandRunner & { commands: string[][] } {
  const inner = createCommandRunner({ netns: NS });
  const commands: string[][] = [];
  return { netns: NS, commands, run: (argv, options) => (commands.push([...argv]), inner.run(argv, options)) };
}

describe.skipIf(!isRoot || !haveTools)("mss clamping (root)", () => {
  beforeAll(async () => {
    await exec("ip", ["netns", "del", NS]).catch(() => undefined);
    await exec("ip", ["netns", "add", NS]);
    // Something else's rule in FORWARD, which must stay.
    await inNs("iptables", "-t", "mangle", "-A", "FORWARD", "-o", "eth9", "-j", "ACCEPT");
  });
  afterAll(async () => {
    await exec("ip", ["netns", "del", NS]).catch(() => undefined);
  });

  it("mss - the first apply writes the chain and its jump in two commands; a new MTU rewrites it; a restart adds no second jump", async () => {
    const run = countingRunner();
    await applyMssClamp(run, "weft0", 1420);
    expect(await rules(MSS_CHAIN), "WEFT-MSS at MTU 1420").toEqual([
      "-o weft0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
      "-i weft0 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1381:65535 -j TCPMSS --set-mss 1380",
    ]);
    expect(await rules("FORWARD"), "FORWARD: our jump first, the other rule kept").toEqual([`-j ${MSS_CHAIN}`, "-o eth9 -j ACCEPT"]);
    expect(run.commands.map((c) => c[0]), "commands run").toEqual(["iptables", "iptables-restore"]);

    await applyMssClamp(run, "weft1", 1280);
    expect(await rules(MSS_CHAIN), "rewritten for weft1 at MTU 1280").toEqual([
      "-o weft1 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
      "-i weft1 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1241:65535 -j TCPMSS --set-mss 1240",
    ]);
    // A restarted agent: a new runner, the chain and the jump already there.
    await applyMssClamp(countingRunner(), "weft1", 1280);
    expect(await rules("FORWARD"), "still one jump").toEqual([`-j ${MSS_CHAIN}`, "-o eth9 -j ACCEPT"]);
    expect((await rules(MSS_CHAIN)).length, "still two rules").toBe(2);
  });
});
