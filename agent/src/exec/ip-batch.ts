/**
 * Several `ip` commands in one process (`ip -batch -`): on a small VM each process costs more CPU
 * than the change it makes (test/bench/README.md, "Fewer commands per agent start"). They run in
 * order and stop at the first that fails, which is then reported as if run alone: a CommandError
 * whose argv is that command's and whose stderr is ip's, so callers branch on it as before.
 */
import { CommandError } from "./errors.js";
import type { CommandRunner } from "./runner.js";

/**
 * Runs `commands` (each an `ip` command's arguments, without `ip` and without options such as
 * `-4`, which a batch line cannot carry) after the options `global` (e.g. `-n <netns>`).
 * Arguments are names, numbers and addresses: one holding whitespace, which would split it in the
 * batch, is refused before anything runs. No command: nothing is run.
 */
export async function ipBatch(run: CommandRunner, global: readonly string[], commands: readonly (readonly string[])[]): Promise<void> {
  if (commands.length === 0) return;
  for (const arg of commands.flat()) {
    if (arg === "" || /\s/.test(arg)) throw new CommandError(["ip", ...global, "-batch", "-"], { exitCode: null, stderr: "", reason: `argument ${JSON.stringify(arg)} cannot go in a batch` });
  }
  if (commands.length === 1) {
    await run.run(["ip", ...global, ...commands[0]!]);
    return;
  }
  try {
    await run.run(["ip", ...global, "-batch", "-"], { input: commands.map((c) => `${c.join(" ")}\n`).join("") });
  } catch (err) {
    const line = err instanceof CommandError ? /Command failed -:(\d+)/.exec(err.stderr)?.[1] : undefined;
    const failed = line === undefined ? undefined : commands[Number(line) - 1];
    if (!(err instanceof CommandError) || failed === undefined) throw err;
    throw new CommandError(["ip", ...global, ...failed], { exitCode: err.exitCode, signal: err.signal, stderr: err.stderr.replace(/\nCommand failed -:\d+\n?$/, "\n") }, { cause: err });
  }
}
