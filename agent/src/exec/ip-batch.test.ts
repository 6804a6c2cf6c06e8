/** ipBatch with the real `ip`, on reads only (nothing on this host is changed). */
import { describe, expect, it } from "vitest";
import { CommandError } from "./errors.js";
import { ipBatch } from "./ip-batch.js";
import { createCommandRunner, type CommandRunner } from "./runner.js";

function countingRunner(): CommandRunner & { calls: { argv: string[]; input?: string }[] } {
  const inner = createCommandRunner();
  const calls: { argv: string[]; input?: string }[] = [];
  return { netns: undefined, calls, run: (argv, options) => (calls.push({ argv: [...argv], ...(options?.input === undefined ? {} : { input: options.input }) }), inner.run(argv, options)) };
}

describe("exec/ip-batch", () => {
  it("ip batch - the commands go to one `ip -batch -`; one command runs alone; none runs nothing", async () => {
    const run = countingRunner();
    await ipBatch(run, [], [["link", "show", "dev", "lo"], ["addr", "show", "dev", "lo"]]);
    expect(run.calls).toEqual([{ argv: ["ip", "-batch", "-"], input: "link show dev lo\naddr show dev lo\n" }]);
    await ipBatch(run, [], [["link", "show", "dev", "lo"]]);
    expect(run.calls[1], "one command").toEqual({ argv: ["ip", "link", "show", "dev", "lo"] });
    await ipBatch(run, [], []);
    expect(run.calls.length, "no command").toBe(2);
  });

  it("ip batch - the first failing command is reported as if run alone, and the ones after it do not run", async () => {
    const err = await ipBatch(createCommandRunner(), [], [["link", "show", "dev", "lo"], ["link", "show", "dev", "weftnone0"], ["link", "del", "dev", "weftnone1"]]).catch((e: unknown) => e);
    expect(err, String(err)).toBeInstanceOf(CommandError);
    expect((err as CommandError).argv).toEqual(["ip", "link", "show", "dev", "weftnone0"]);
    expect((err as CommandError).stderr).toMatch(/^Device "weftnone0" does not exist\.\n$/);
  });

  it("ip batch - an argument with whitespace is refused before anything runs", async () => {
    const run = countingRunner();
    const err = await ipBatch(run, [], [["link", "show"], ["link", "set", "dev", "lo up"]]).catch((e: unknown) => e);
    expect(String(err)).toMatch(/argument "lo up" cannot go in a batch/);
    expect(run.calls, "nothing run").toEqual([]);
  });
});
