import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectBackend } from "./backend.js";
import { ImplementationNotFoundError } from "./errors.js";
import { commandFailure, createFakeRunner } from "../exec/runner_fake.js";

describe("wireguard - backend detection", () => {
  let dir = "";
  let bin = "";
  let noModules = "";
  let withModule = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-wg-backend-"));
    bin = join(dir, "bin");
    noModules = join(dir, "sys-empty");
    withModule = join(dir, "sys-wg");
    await mkdir(bin);
    await mkdir(noModules);
    await mkdir(join(withModule, "wireguard"), { recursive: true });
    await writeFile(join(bin, "wireguard-go"), "#!/bin/sh\n");
    await chmod(join(bin, "wireguard-go"), 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const noKernel = () => createFakeRunner((argv) => {
    throw commandFailure(argv, "Error: Unknown device type.\n", 2);
  });

  it("prefers a loaded kernel module without probing", async () => {
    const runner = noKernel();
    const got = await detectBackend({ runner, sysModuleDir: withModule, path: bin });
    expect(got, `got ${JSON.stringify(got)}`).toEqual({ implementation: "kernel" });
    expect(runner.calls, "no probe needed").toEqual([]);
  });

  it("uses the kernel when a probe link can be created, and deletes the probe", async () => {
    const runner = createFakeRunner(() => undefined);
    const got = await detectBackend({ runner, sysModuleDir: noModules, path: "" });
    expect(got, `got ${JSON.stringify(got)}`).toEqual({ implementation: "kernel" });
    const cmds = runner.calls.map((c) => c.argv.slice(0, 3).join(" "));
    expect(cmds, `got ${JSON.stringify(cmds)}`).toEqual(["ip link add", "ip link del"]);
    expect(runner.calls[0]?.argv[3], "same probe deleted").toBe(runner.calls[1]?.argv[3]);
  });

  it("falls back to wireguard-go on PATH", async () => {
    const got = await detectBackend({ runner: noKernel(), sysModuleDir: noModules, path: `relative:${bin}` });
    const want = { implementation: "userspace", binary: join(bin, "wireguard-go") };
    expect(got, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });

  it("userspace can be forced even when the kernel module is there", async () => {
    const got = await detectBackend({ implementation: "userspace", runner: noKernel(), sysModuleDir: withModule, path: bin });
    expect(got.implementation, `got ${got.implementation}, want userspace`).toBe("userspace");
  });

  it("says what to install when there is neither", async () => {
    const err = await detectBackend({ runner: noKernel(), sysModuleDir: noModules, path: noModules }).catch((e: unknown) => e);
    expect(err, `got ${String(err)}, want ImplementationNotFoundError`).toBeInstanceOf(ImplementationNotFoundError);
    expect(String(err), "names both options").toMatch(/kernel module.*wireguard-go/s);
  });
});
