/** Unit tests of the command runner: errors name the command, exit code, stderr and batch line. */
import { describe, expect, it } from "vitest";
import { LabCommandError } from "./errors.js";
import { mapLimit, run, runIpBatch } from "./run.js";

describe("lab - run", () => {
  it("lab - run returns output of a successful command", async () => {
    const got = await run([process.execPath, "-e", "process.stdout.write('hi')"]);
    expect(got.stdout, "stdout").toBe("hi");
    expect(got.exitCode, "exit code").toBe(0);
  });

  it("lab - run failure names the command, exit code and stderr", async () => {
    const argv = [process.execPath, "-e", "process.stderr.write('boom'); process.exit(3)"];
    const err = await run(argv).catch((e: unknown) => e);
    expect(err, "error class").toBeInstanceOf(LabCommandError);
    const e = err as LabCommandError;
    expect(e.argv, "argv").toEqual(argv);
    expect(e.exitCode, "exit code").toBe(3);
    expect(e.stderr, "stderr").toBe("boom");
    expect(e.message, "message").toContain("exit 3: boom");
  });

  it("lab - run a missing program is a LabCommandError", async () => {
    const err = await run(["/nonexistent/weft-lab-tool"]).catch((e: unknown) => e);
    expect(err, "error class").toBeInstanceOf(LabCommandError);
    expect((err as LabCommandError).exitCode, "exit code").toBeNull();
  });

  it("lab - run ip batch failure names the failing line", async () => {
    const err = await runIpBatch(["link show dev lo", "link show dev weft-no-such-dev0"]).catch((e: unknown) => e);
    expect(err, "error class").toBeInstanceOf(LabCommandError);
    expect((err as Error).message, "message").toContain("failed at line 2: ip link show dev weft-no-such-dev0");
  });

  it("lab - run mapLimit keeps order and bounds concurrency", async () => {
    let inFlight = 0;
    let peak = 0;
    const got = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return n * 2;
    });
    expect(got, "results").toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(peak <= 3, `peak concurrency: got ${peak}, want <= 3`).toBe(true);
  });
});
